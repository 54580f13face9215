"""How the SWCI web client reaches `swci serve`: the base URL, the TLS context built from HPE's
clientCert / clientPKey / clientCABundle arguments, and an httpx client with timeouts."""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

import httpx

from swarmlearning.identity.tls import CA_SUFFIXES, IdentityError, load_trust

# Seconds to open a connection, and to wait for a command's reply (env SWCI_WEB_TIMEOUT).
CONNECT_TIMEOUT = 10.0
DEFAULT_COMMAND_TIMEOUT = 300.0
TIMEOUT_ENV = "SWCI_WEB_TIMEOUT"
UPLOAD_TIMEOUT = 120.0


def command_timeout(logger: logging.Logger) -> float:
    """The reply timeout for one command, from SWCI_WEB_TIMEOUT (seconds) or the default."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_COMMAND_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        logger.warning("%s=%r is not a positive number of seconds; using %g", TIMEOUT_ENV, raw,
                       DEFAULT_COMMAND_TIMEOUT)
        return DEFAULT_COMMAND_TIMEOUT
    return value


def base_url(host: str, port: int, secure: bool) -> str:
    """scheme://host:port, with an IPv6 literal put in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if secure else 'http'}://{host}:{port}"


def tls_context(cert: str | os.PathLike[str] | None, key: str | os.PathLike[str] | None,
                ca_bundle: str | os.PathLike[str] | None,
                logger: logging.Logger) -> ssl.SSLContext:
    """A TLS >= 1.2 client context presenting the client certificate (a cert and key pair, or one
    PEM holding both; none when cert is None) and trusting clientCABundle: a CA file, or a
    directory of CA certificates (*.pem / *.crt, or OpenSSL hashed names). Host names are not
    checked, because swarm certificates name components rather than hosts. Without a CA bundle
    the server is not verified, as in HPE's client, and a warning is logged."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    if cert is None:
        logger.warning("clientCABundle without clientCert: connecting over HTTPS without a "
                       "client certificate")
    else:
        try:
            context.load_cert_chain(certfile=str(cert), keyfile=str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            where = f"clientCert={cert}" + (f", clientPKey={key}" if key else "")
            raise RuntimeError(f"{where}: cannot load the client certificate and key "
                               f"({_reason(exc)})") from exc
    if ca_bundle is None:
        context.verify_mode = ssl.CERT_NONE
        logger.warning("No clientCABundle given: the SWCI server's certificate is NOT verified")
        return context
    context.verify_mode = ssl.CERT_REQUIRED
    bundle = Path(ca_bundle)
    try:
        if bundle.is_dir():
            if any(p.suffix.lower() in CA_SUFFIXES and p.is_file() for p in bundle.iterdir()):
                load_trust(context, bundle, None, source="")
            else:  # an OpenSSL capath of hashed names (<hash>.0), looked up at handshake time
                context.load_verify_locations(capath=str(bundle))
        elif bundle.is_file():
            load_trust(context, None, bundle, source="")
        else:
            raise RuntimeError(f"clientCABundle={bundle}: no such file or directory")
    except (IdentityError, OSError, ssl.SSLError) as exc:
        raise RuntimeError(f"clientCABundle={bundle}: {_reason(exc)}") from exc
    return context


def http_client(verify: ssl.SSLContext | bool,
                transport: httpx.BaseTransport | None) -> httpx.Client:
    """The httpx client every request goes through; each request sets its own read timeout."""
    timeout = httpx.Timeout(DEFAULT_COMMAND_TIMEOUT, connect=CONNECT_TIMEOUT)
    return httpx.Client(verify=verify, timeout=timeout, transport=transport)


def request_timeout(read: float) -> httpx.Timeout:
    """Connect within CONNECT_TIMEOUT, then allow `read` seconds for the reply."""
    return httpx.Timeout(read, connect=CONNECT_TIMEOUT)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, IdentityError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)
