"""Who a certificate speaks for: the principal that owns the nodes it registers.

A principal is the pair (issuer name, subject name) as the CA signed it, hashed to 32 bytes for
the node registry. Re-issuing a certificate from the same CA under the same name (gen-cert run
again, a renewal) keeps the principal, so a node survives its certificate's rotation; a
certificate from another CA, or for another name, is another principal. Nodes that share one
certificate are one principal to the swarm.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509


@dataclass(frozen=True)
class Principal:
    """A certificate's identity: `key` for the registry, `name` for messages."""

    key: bytes
    name: str

    @classmethod
    def of_certificate(cls, certificate: x509.Certificate) -> Principal:
        issuer = certificate.issuer.public_bytes()
        subject = certificate.subject.public_bytes()
        digest = hashlib.sha256(len(issuer).to_bytes(4, "big") + issuer + subject).digest()
        return cls(digest, f"{certificate.subject.rfc4514_string()} (issued by "
                           f"{certificate.issuer.rfc4514_string()})")

    @staticmethod
    @lru_cache(maxsize=1024)
    def of_der(der: bytes) -> Principal:
        return Principal.of_certificate(x509.load_der_x509_certificate(der))

    @classmethod
    def of_pem_file(cls, path: Path) -> Principal:
        return cls.of_certificate(x509.load_pem_x509_certificate(Path(path).read_bytes()))


# What calls from inside an SN's own process act as (tests drive the service directly).
IN_PROCESS = Principal(hashlib.sha256(b"swarm: in-process").digest(), "this SN's own process")
