"""The TLS context SWCI uses as a client, from HPE's identity variables (SWARM_ID_*)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from swarmlearning.identity.tls import ENV_PREFIX, Identity, client_context, trust_context


def client_ssl_context(env: dict[str, str] | None = None,
                       workspace: Path | None = None) -> ssl.SSLContext:
    """A client context trusting SWARM_ID_CAPATH/SWARM_ID_CACERT, presenting SWARM_ID_CERT/KEY;
    without them, the swci identity of the local workspace's PKI (made by START SN)."""
    env = dict(os.environ if env is None else env)
    identity = Identity.from_env(env, prefix=ENV_PREFIX)
    if identity is not None:
        return client_context(identity)
    local = _workspace_identity(workspace)
    if local is not None and not env.get(f"{ENV_PREFIX}CAPATH"):
        return client_context(local)
    capath, cacert = env.get(f"{ENV_PREFIX}CAPATH"), env.get(f"{ENV_PREFIX}CACERT")
    if capath or cacert:
        return trust_context(Path(capath) if capath else None, Path(cacert) if cacert else None,
                             source=ENV_PREFIX)
    return ssl.create_default_context()


def identity_key(workspace: Path | None = None,
                 env: dict[str, str] | None = None) -> tuple[object, ...]:
    """What `client_ssl_context` would be made from, as a value that changes when it does: the
    SWARM_ID_* variables, and the name and modification time of every file they or the
    workspace's swci identity name (certificate, key, CA bundle, each file of the capath), so a
    renewed certificate or a CA added to the capath gets a new context."""
    env = dict(os.environ if env is None else env)
    named = tuple(sorted((key, value) for key, value in env.items()
                         if key.startswith(ENV_PREFIX)))
    files = [Path(env[f"{ENV_PREFIX}{name}"]) for name in ("CERT", "KEY", "CACERT", "CAPATH")
             if env.get(f"{ENV_PREFIX}{name}")]
    local = _workspace_identity(workspace)
    if local is not None:
        files += [local.cert, local.key, *([local.capath] if local.capath else [])]
    return (*named, *(_stamp(path) for path in files))


def _stamp(path: Path) -> tuple[object, ...]:
    """(path, modification time), and for a directory the same of each file in it."""
    try:
        if path.is_dir():
            return (str(path), tuple(sorted((entry.name, entry.stat().st_mtime_ns)
                                            for entry in path.iterdir())))
        return (str(path), path.stat().st_mtime_ns)
    except OSError:
        return (str(path), None)


def _workspace_identity(workspace: Path | None) -> Identity | None:
    if workspace is None:
        return None
    cert_dir = workspace / "pki" / "cert"
    cert, key = cert_dir / "swci-1-cert.pem", cert_dir / "swci-1-key.pem"
    if cert.exists() and key.exists():
        return Identity(cert=cert, key=key, capath=cert_dir / "ca" / "capath")
    return None
