"""The one place TLS contexts are built, for every component: mutual TLS between nodes that
trust exactly the CA certificates in their capath (and cacert), never the system store."""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from swarmlearning.identity.pki import PkiLayout

ENV_PREFIX = "SWARM_ID_"
CA_SUFFIXES = (".pem", ".crt")


class IdentityError(ValueError):
    """A certificate, key or CA location that cannot be used; the message names its source."""


@dataclass(frozen=True)
class Identity:
    """A component's certificate and key, and the CA certificates it trusts."""

    cert: Path
    key: Path
    capath: Path | None = None
    cacert: Path | None = None
    # How each path was given, for error messages: "" (plain option names) or an env prefix.
    source: str = field(default="", compare=False, repr=False)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX
    ) -> Identity | None:
        """The identity in <prefix>CERT/KEY/CAPATH/CACERT, or None when <prefix>CERT is unset."""
        env = os.environ if env is None else env
        cert = env.get(f"{prefix}CERT")
        if not cert:
            return None
        key = env.get(f"{prefix}KEY")
        if not key:
            raise IdentityError(f"{prefix}CERT is set but {prefix}KEY is not")
        capath, cacert = env.get(f"{prefix}CAPATH"), env.get(f"{prefix}CACERT")
        return cls(cert=Path(cert), key=Path(key), capath=Path(capath) if capath else None,
                   cacert=Path(cacert) if cacert else None, source=prefix)

    @classmethod
    def for_component(cls, pki_root: Path, comp: str, index: int) -> Identity:
        """The identity of component `comp` in a layout written by generate_pki."""
        root = Path(pki_root)
        if not (root / "ca").is_dir() and (root / "cert").is_dir():
            root = root / "cert"  # the directory given to generate_pki, not its cert/
        layout = PkiLayout(root=root, index=index)
        return cls(cert=layout.cert(comp), key=layout.key(comp), capath=layout.capath)

    def origin(self, option: str) -> str:
        """How an option is named where it came from: SWARM_ID_CERT, or cert."""
        return _origin(self.source, option)


def server_context(identity: Identity) -> ssl.SSLContext:
    """A TLS >= 1.2 server context that requires a client certificate from a trusted CA. A CA
    certificate added to the capath later (another organisation joining) is trusted within
    seconds, without a restart."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    _load_identity(context, identity)
    if identity.capath is not None:
        follow_capath(context, Path(identity.capath))
    return context


def follow_capath(context: ssl.SSLContext, capath: Path, interval: float = 2.0) -> None:
    """Load CA certificates that appear in `capath` into `context` as they come (a daemon
    thread; trust is only ever added, as OpenSSL's store allows)."""
    def known() -> set[tuple[str, int]]:
        try:
            return {(entry.name, entry.stat().st_mtime_ns) for entry in capath.iterdir()
                    if entry.suffix.lower() in CA_SUFFIXES and entry.is_file()}
        except OSError:
            return set()

    seen = known()

    def watch() -> None:
        nonlocal seen
        while True:
            time.sleep(interval)
            now = known()
            for name, _ in sorted(now - seen):
                try:
                    context.load_verify_locations(cafile=str(capath / name))
                except (ssl.SSLError, OSError):
                    continue  # a half-written or foreign file: tried again when it changes
            seen = now

    threading.Thread(target=watch, daemon=True, name="capath").start()


def client_context(identity: Identity, *, check_hostname: bool = True) -> ssl.SSLContext:
    """A TLS >= 1.2 client context presenting the identity and trusting only its CA set."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    _load_identity(context, identity)
    return context


def trust_context(
    capath: Path | None, cacert: Path | None, *, source: str = "", check_hostname: bool = True
) -> ssl.SSLContext:
    """A TLS >= 1.2 client context trusting only capath/cacert, presenting no certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    load_trust(context, capath, cacert, source=source)
    return context


def ca_files(capath: Path | None, cacert: Path | None, *, source: str = "") -> list[Path]:
    """Every CA certificate file to trust: capath's *.pem/*.crt files, then cacert."""
    files: list[Path] = []
    if capath is not None:
        capath = Path(capath)
        where = f"{_origin(source, 'capath')}={capath}"
        if not capath.exists():
            raise IdentityError(f"{where}: no such directory")
        if not capath.is_dir():
            raise IdentityError(f"{where}: not a directory")
        try:
            entries = sorted(capath.iterdir())
        except OSError as exc:
            raise IdentityError(f"{where}: {_reason(exc)}") from exc
        found = [p for p in entries if p.suffix.lower() in CA_SUFFIXES and p.is_file()]
        if not found:
            raise IdentityError(f"{where}: no CA certificates in {capath} "
                                "(expected *.pem or *.crt files)")
        files += found
    if cacert is not None:
        _read(Path(cacert), _origin(source, "cacert"))
        files.append(Path(cacert))
    return files


def load_trust(
    context: ssl.SSLContext, capath: Path | None, cacert: Path | None, *, source: str = ""
) -> None:
    """Make the context trust exactly the CA certificates in capath and cacert."""
    files = ca_files(capath, cacert, source=source)
    if not files:
        raise IdentityError(f"no CA to trust: set {_origin(source, 'capath')} "
                            f"or {_origin(source, 'cacert')}")
    for path in files:
        option = _origin(source, "cacert" if cacert is not None and path == Path(cacert)
                         else "capath")
        try:
            context.load_verify_locations(cafile=str(path))
        except (ssl.SSLError, OSError) as exc:
            raise IdentityError(f"{option}: {path}: not a PEM CA certificate "
                                f"({_reason(exc)})") from exc


def _load_identity(context: ssl.SSLContext, identity: Identity) -> None:
    """Load the certificate, its key and the trusted CAs, with errors naming each file."""
    cert_opt, key_opt = identity.origin("cert"), identity.origin("key")
    cert_data = _read(identity.cert, cert_opt)
    key_data = _read(identity.key, key_opt)
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError as exc:
        raise IdentityError(f"{cert_opt}={identity.cert}: not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError as exc:
        raise IdentityError(f"{key_opt}={identity.key}: the key is encrypted; "
                            "an unencrypted key is required") from exc
    except ValueError as exc:
        raise IdentityError(f"{key_opt}={identity.key}: not a PEM private key") from exc
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise IdentityError(f"{key_opt}={identity.key}: the key does not match the certificate "
                            f"{cert_opt}={identity.cert}")
    try:
        context.load_cert_chain(certfile=str(identity.cert), keyfile=str(identity.key))
    except ssl.SSLError as exc:
        raise IdentityError(f"{cert_opt}={identity.cert}, {key_opt}={identity.key}: "
                            f"{_reason(exc)}") from exc
    load_trust(context, identity.capath, identity.cacert, source=identity.source)


def _origin(source: str, option: str) -> str:
    """An option's name as its source spells it: SWARM_ID_CAPATH, or plain capath."""
    return f"{source}{option.upper()}" if source else option


def _read(path: Path, option: str) -> bytes:
    """A file's bytes, or an IdentityError saying which option named it and what went wrong."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise IdentityError(f"{option}={path}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """A short lower-case reason for an OS or SSL error."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).lower()


def _public_der(public_key: object) -> bytes:
    """A public key as DER, to compare a key with a certificate."""
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
