"""identity: each organisation's PKI (a CA, and a certificate per component) and the one helper
that turns it into mutual-TLS contexts for SN, SL, SWCI and SWOP."""

from swarmlearning.identity.pki import COMPONENTS, PkiLayout, add_trusted_ca, generate_pki
from swarmlearning.identity.tls import (
    Identity,
    IdentityError,
    client_context,
    server_context,
    trust_context,
)

__all__ = [
    "COMPONENTS",
    "Identity",
    "IdentityError",
    "PkiLayout",
    "add_trusted_ca",
    "client_context",
    "generate_pki",
    "server_context",
    "trust_context",
]
