"""Generate HPE Swarm Learning's certificate layout: one CA per organisation and a signed
certificate for each component (SN, SL, SWCI, SWOP) that acts as both TLS server and client."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

COMPONENTS = ("sn", "sl", "swci", "swop")
ORG_UNIT = "Swarm-Learning"
_CLOCK_SKEW = datetime.timedelta(minutes=5)
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


@dataclass(frozen=True)
class PkiLayout:
    """Where one organisation's CA and one index's component certificates live."""

    root: Path
    index: int

    @property
    def capath(self) -> Path:
        """The directory of trusted CA certificates (this CA plus any added with add_trusted_ca)."""
        return self.root / "ca" / "capath"

    @property
    def ca_cert(self) -> Path:
        """This organisation's self-signed CA certificate."""
        return self.capath / f"ca-{self.index}-cert.pem"

    @property
    def ca_key(self) -> Path:
        """This organisation's CA private key (mode 0600)."""
        return self.root / "ca" / f"ca-{self.index}-key.pem"

    def cert(self, comp: str) -> Path:
        """The certificate of component `comp` (sn, sl, swci, swop)."""
        return self.root / f"{comp.lower()}-{self.index}-cert.pem"

    def key(self, comp: str) -> Path:
        """The private key of component `comp` (mode 0600)."""
        return self.root / f"{comp.lower()}-{self.index}-key.pem"


def generate_pki(
    directory: Path,
    org: str,
    index: int,
    hosts: Sequence[str] = ("localhost",),
    ips: Sequence[str] = ("127.0.0.1",),
    components: Iterable[str] = COMPONENTS,
    days: int = 825,
) -> PkiLayout:
    """Write (or refresh) the CA and component certificates under `directory/cert/`."""
    if days <= 0:
        raise ValueError(f"days must be positive, not {days}")
    layout = PkiLayout(root=Path(directory) / "cert", index=index)
    layout.capath.mkdir(parents=True, exist_ok=True)
    addresses = [_parse_ip(ip) for ip in ips]
    ca_cert, ca_key = _load_or_create_ca(layout, org, index, days)
    for comp in components:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign_leaf(ca_cert, ca_key, key, org, f"{comp.upper()}-{index}",
                          hosts, addresses, days)
        _write_private(layout.key(comp), _key_pem(key))
        _write_public(layout.cert(comp), cert.public_bytes(serialization.Encoding.PEM))
    return layout


def node_certificate(layout: PkiLayout, comp: str, node: str,
                     hosts: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",),
                     days: int = 825) -> tuple[Path, Path]:
    """(certificate, key) of one node, signed by the organisation's existing CA, under
    `layout.root/nodes/`: common name `<COMP>-<index>-<node>`, so that two nodes of one
    organisation are two identities (the SN binds each node UID to the identity that registered
    it). Made on first use and kept; made again when it expires within a day."""
    if not _NODE_NAME.fullmatch(node):
        raise ValueError(f"node name {node!r}: use letters, digits, '.', '_' and '-'")
    directory = layout.root / "nodes"
    cert_path = directory / f"{comp.lower()}-{node}-cert.pem"
    key_path = directory / f"{comp.lower()}-{node}-key.pem"
    if not (layout.ca_cert.exists() and layout.ca_key.exists()):
        raise ValueError(f"{layout.ca_cert}: the organisation's CA is missing")
    ca_cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    if cert_path.exists() and key_path.exists() and _still_good(
            x509.load_pem_x509_certificate(cert_path.read_bytes()), ca_cert, hosts, ips):
        return cert_path, key_path
    ca_key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
    orgs = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(orgs[0].value) if orgs else "swarm"
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_leaf(ca_cert, ca_key, key, org, f"{comp.upper()}-{layout.index}-{node}",  # type: ignore[arg-type]
                      hosts, [_parse_ip(ip) for ip in ips], days)
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _still_good(cert: x509.Certificate, ca_cert: x509.Certificate, hosts: Sequence[str],
                ips: Sequence[str]) -> bool:
    """A node certificate to keep: from this CA, valid for more than a day, and naming every
    host and address asked for."""
    if cert.issuer != ca_cert.subject:
        return False
    try:
        ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[call-arg, union-attr]
                                    ec.ECDSA(cert.signature_hash_algorithm))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any failure means another CA signed it
        return False
    if cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC) <= datetime.timedelta(days=1):
        return False
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have = {str(n) for n in names.get_values_for_type(x509.DNSName)} | {
        str(a) for a in names.get_values_for_type(x509.IPAddress)}
    return set(hosts) | {str(_parse_ip(ip)) for ip in ips} <= have


def add_trusted_ca(capath: Path, ca_cert_pem: Path) -> Path:
    """Copy another organisation's CA certificate into `capath`; return where it landed."""
    source = Path(ca_cert_pem)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ValueError(f"{source}: {exc.strerror or exc}") from exc
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise ValueError(f"{source}: not a PEM certificate") from exc
    if not _is_ca(cert):
        raise ValueError(f"{source}: not a CA certificate (BasicConstraints ca=True is missing); "
                         "only CA certificates belong in a capath")
    capath = Path(capath)
    capath.mkdir(parents=True, exist_ok=True)
    name = source.name if source.suffix in (".pem", ".crt") else f"{source.name}.pem"
    target = capath / name
    if target.exists() and target.read_bytes() != data:
        # Two organisations may both use index 1: keep both CAs, told apart by fingerprint.
        short = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()[:12]
        target = capath / f"{Path(name).stem}-{short}{Path(name).suffix}"
    if not (target.exists() and target.read_bytes() == data):
        shutil.copyfile(source, target)
    return target


def _load_or_create_ca(
    layout: PkiLayout, org: str, index: int, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Reuse the CA found in the layout, or create a fresh self-signed one."""
    have_cert, have_key = layout.ca_cert.exists(), layout.ca_key.exists()
    if have_cert and have_key:
        cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
        if not _is_ca(cert):
            raise ValueError(f"{layout.ca_cert}: not a CA certificate")
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise ValueError(f"{layout.ca_key}: does not match {layout.ca_cert}")
        return cert, key
    if have_cert or have_key:
        present, missing = ((layout.ca_cert, layout.ca_key) if have_cert
                            else (layout.ca_key, layout.ca_cert))
        raise ValueError(f"{missing}: missing while {present} exists; refusing to replace a CA "
                         "other certificates may depend on (remove both to start over)")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"CA-{index}"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT),
    ])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(layout.ca_key, _key_pem(key))
    _write_public(layout.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _sign_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    org: str,
    common_name: str,
    hosts: Sequence[str],
    addresses: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address],
    days: int,
) -> x509.Certificate:
    """A certificate for one component, usable for both TLS server and TLS client auth."""
    dns = list(dict.fromkeys([common_name, *hosts]))
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    san += [x509.IPAddress(address) for address in dict.fromkeys(addresses)]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT),
        ]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """KeyUsage for a CA (sign certificates and CRLs) or a leaf (sign, agree keys)."""
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=not cert_sign, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _is_ca(cert: x509.Certificate) -> bool:
    """Whether the certificate carries BasicConstraints ca=True."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IP address for the SAN, with a clear error for a malformed one."""
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(f"not an IP address: {text!r}") from exc


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """An unencrypted PKCS#8 PEM, which ssl.load_cert_chain reads without a password."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable by its owner only (0600), even if the file existed before."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate (0644)."""
    path.write_bytes(data)
    path.chmod(0o644)
