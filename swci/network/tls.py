"""The TLS context SWCI uses as a client, from HPE's identity variables (SWARM_ID_*)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path


def client_ssl_context(env: dict[str, str] | None = None) -> ssl.SSLContext:
    """A client context trusting SWARM_ID_CAPATH/SWARM_ID_CACERT, presenting SWARM_ID_CERT/KEY."""
    env = dict(os.environ if env is None else env)
    context = ssl.create_default_context()
    cacert, capath = env.get("SWARM_ID_CACERT"), env.get("SWARM_ID_CAPATH")
    if cacert or capath:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cacert:
            context.load_verify_locations(cafile=cacert)
        if capath:
            for pem in sorted(Path(capath).glob("*.pem")):
                context.load_verify_locations(cafile=str(pem))
    cert, key = env.get("SWARM_ID_CERT"), env.get("SWARM_ID_KEY")
    if cert:
        context.load_cert_chain(certfile=cert, keyfile=key or None)
    return context
