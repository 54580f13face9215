"""node_certificate: one certificate per node from its organisation's CA, kept across restarts
while it still fits, and made again when the CA, the node's addresses or its validity change."""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography import x509

from swarmlearning.identity.pki import generate_pki, node_certificate


def test_a_node_certificate_is_kept_while_it_fits(tmp_path: Path) -> None:
    layout = generate_pki(tmp_path / "org", "org-a", 1)
    cert, _ = node_certificate(layout, "sl", "sl1")
    first = cert.read_bytes()
    subject = x509.load_pem_x509_certificate(first).subject.rfc4514_string()
    assert "CN=SL-1-sl1" in subject and "O=org-a" in subject
    assert node_certificate(layout, "sl", "sl1")[0].read_bytes() == first  # kept
    # another address for the node: made again, naming it
    cert, _ = node_certificate(layout, "sl", "sl1", ips=["127.0.0.1", "10.9.8.7"])
    assert cert.read_bytes() != first
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions \
        .get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.9.8.7" in {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    second = cert.read_bytes()
    # a new CA for the organisation: made again, signed by it
    shutil.rmtree(layout.root / "ca")
    layout = generate_pki(tmp_path / "org", "org-a", 1)
    cert, _ = node_certificate(layout, "sl", "sl1", ips=["127.0.0.1", "10.9.8.7"])
    assert cert.read_bytes() != second
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    ca = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    assert issued.issuer == ca.subject
