"""swarmlearning.identity: the certificate layout, and real mutual-TLS handshakes on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from swarmlearning.identity import (
    Identity,
    IdentityError,
    PkiLayout,
    add_trusted_ca,
    client_context,
    generate_pki,
    server_context,
)
from swci.network.tls import client_ssl_context

TIMEOUT = 5.0


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def org_a(tmp_path_factory) -> PkiLayout:
    return generate_pki(tmp_path_factory.mktemp("org-a"), "OrgA", 1)


@pytest.fixture(scope="module")
def org_b(tmp_path_factory) -> PkiLayout:
    return generate_pki(tmp_path_factory.mktemp("org-b"), "OrgB", 1)


# ---- layout -------------------------------------------------------------------------------


def test_layout_names_and_modes(tmp_path):
    layout = generate_pki(tmp_path, "Acme", 2, components=("sn", "swci"))
    cert = tmp_path / "cert"
    assert layout.root == cert
    assert layout.capath == cert / "ca" / "capath"
    assert layout.ca_cert == cert / "ca" / "capath" / "ca-2-cert.pem"
    assert layout.ca_key == cert / "ca" / "ca-2-key.pem"
    assert layout.cert("sn") == cert / "sn-2-cert.pem"
    assert layout.key("SWCI") == cert / "swci-2-key.pem"
    expected = {
        "ca/capath/ca-2-cert.pem", "ca/ca-2-key.pem",
        "sn-2-cert.pem", "sn-2-key.pem", "swci-2-cert.pem", "swci-2-key.pem",
    }
    written = {str(p.relative_to(cert)) for p in cert.rglob("*") if p.is_file()}
    assert written == expected
    for key in (layout.ca_key, layout.key("sn"), layout.key("swci")):
        assert mode(key) == 0o600, key
    assert mode(layout.cert("sn")) == 0o644


def test_default_components_are_sn_sl_swci_swop(org_a):
    for comp in ("sn", "sl", "swci", "swop"):
        assert org_a.cert(comp).is_file() and org_a.key(comp).is_file()


def test_ca_certificate(org_a):
    ca = load(org_a.ca_cert)
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CA-1"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "OrgA"
    assert ca.subject.get_attributes_for_oid(
        NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "Swarm-Learning"
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    ca.verify_directly_issued_by(ca)


def test_leaf_certificate_names_usage_and_issuer(tmp_path):
    layout = generate_pki(tmp_path, "Acme", 3, hosts=["localhost", "sn.acme.example"],
                          ips=["127.0.0.1", "10.0.0.7", "::1"], components=("sn",))
    leaf, ca = load(layout.cert("sn")), load(layout.ca_cert)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SN-3"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["SN-3", "localhost", "sn.acme.example"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("::1")}
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert leaf.issuer == ca.subject
    leaf.verify_directly_issued_by(ca)
    assert leaf.signature_hash_algorithm.name == "sha256"


def test_second_run_keeps_the_ca_and_rewrites_leaves(tmp_path):
    first = generate_pki(tmp_path, "Acme", 1, components=("sn",))
    ca_before = load(first.ca_cert).fingerprint(hashes.SHA256())
    ca_key_before = first.ca_key.read_bytes()
    sn_before = first.cert("sn").read_bytes()
    second = generate_pki(tmp_path, "Acme", 1, components=("sn", "sl"))
    assert load(second.ca_cert).fingerprint(hashes.SHA256()) == ca_before
    assert second.ca_key.read_bytes() == ca_key_before
    assert second.cert("sn").read_bytes() != sn_before
    ca = load(second.ca_cert)
    for comp in ("sn", "sl"):
        load(second.cert(comp)).verify_directly_issued_by(ca)


def test_a_half_present_ca_is_refused(tmp_path):
    layout = generate_pki(tmp_path, "Acme", 1, components=())
    layout.ca_key.unlink()
    with pytest.raises(ValueError, match="ca-1-key.pem: missing"):
        generate_pki(tmp_path, "Acme", 1)


def test_add_trusted_ca_copies_a_ca_and_refuses_a_leaf(org_a, org_b, tmp_path):
    capath = tmp_path / "capath"
    first = add_trusted_ca(capath, org_a.ca_cert)
    assert first.read_bytes() == org_a.ca_cert.read_bytes()
    # Both organisations use index 1: the second CA must not overwrite the first.
    second = add_trusted_ca(capath, org_b.ca_cert)
    assert second != first and second.read_bytes() == org_b.ca_cert.read_bytes()
    assert add_trusted_ca(capath, org_b.ca_cert) == second  # idempotent
    assert len(list(capath.iterdir())) == 2
    with pytest.raises(ValueError, match="not a CA certificate"):
        add_trusted_ca(capath, org_a.cert("sn"))
    with pytest.raises(ValueError, match="not a PEM certificate"):
        add_trusted_ca(capath, org_a.key("sn"))


# ---- identity and errors ------------------------------------------------------------------


def test_identity_from_env(tmp_path):
    assert Identity.from_env({}) is None
    env = {"SWARM_ID_CERT": "/c.pem", "SWARM_ID_KEY": "/k.pem", "SWARM_ID_CAPATH": "/ca"}
    identity = Identity.from_env(env)
    assert identity == Identity(cert=Path("/c.pem"), key=Path("/k.pem"), capath=Path("/ca"))
    with pytest.raises(IdentityError, match="SWARM_ID_KEY is not"):
        Identity.from_env({"SWARM_ID_CERT": "/c.pem"})


def test_identity_for_component_accepts_either_root(org_a):
    by_cert_dir = Identity.for_component(org_a.root, "sn", 1)
    by_parent = Identity.for_component(org_a.root.parent, "sn", 1)
    assert by_cert_dir == by_parent
    assert by_cert_dir.cert == org_a.cert("sn") and by_cert_dir.capath == org_a.capath


def test_missing_file_names_the_variable_and_the_file(org_a, tmp_path):
    missing = tmp_path / "sn-1-cert.pem"
    env = {"SWARM_ID_CERT": str(missing), "SWARM_ID_KEY": str(org_a.key("sn")),
           "SWARM_ID_CAPATH": str(org_a.capath)}
    with pytest.raises(IdentityError) as info:
        server_context(Identity.from_env(env))
    assert str(info.value) == f"SWARM_ID_CERT={missing}: no such file"
    with pytest.raises(IdentityError, match=r"^SWARM_ID_CERT=.*: no such file$"):
        client_ssl_context(env)


def test_empty_capath_is_reported(org_a, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    identity = Identity(cert=org_a.cert("sn"), key=org_a.key("sn"), capath=empty)
    with pytest.raises(IdentityError, match=f"no CA certificates in {empty}"):
        client_context(identity)


def test_key_not_matching_cert_is_reported(org_a):
    identity = Identity(cert=org_a.cert("sn"), key=org_a.key("sl"), capath=org_a.capath)
    with pytest.raises(IdentityError, match="does not match the certificate"):
        server_context(identity)


def test_swci_client_context_without_identity_is_the_default(org_a):
    assert client_ssl_context({}).verify_mode == ssl.CERT_REQUIRED
    trusting = client_ssl_context({"SWARM_ID_CAPATH": str(org_a.capath)})
    assert len(trusting.get_ca_certs()) == 1
    presenting = client_ssl_context({"SWARM_ID_CERT": str(org_a.cert("swci")),
                                     "SWARM_ID_KEY": str(org_a.key("swci")),
                                     "SWARM_ID_CAPATH": str(org_a.capath)})
    assert [c["subject"] for c in presenting.get_ca_certs()] == \
        [c["subject"] for c in trusting.get_ca_certs()]


# ---- real handshakes ----------------------------------------------------------------------


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> tuple[object, object]:
    """One TLS exchange on 127.0.0.1: (server outcome, client outcome), each b"ok" or an error."""
    outcome: dict[str, object] = {}
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            raw, _ = listener.accept()
            raw.settimeout(TIMEOUT)
            with server_ctx.wrap_socket(raw, server_side=True) as conn:
                if conn.recv(4) == b"ping":
                    conn.sendall(b"ok")
                outcome["server"] = b"ok"
        except (OSError, ssl.SSLError) as exc:
            outcome["server"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(b"ping")
                outcome["client"] = conn.recv(2) or EOFError("closed without a reply")
    except (OSError, ssl.SSLError) as exc:
        outcome["client"] = exc
    finally:
        thread.join(TIMEOUT)
        listener.close()
    assert not thread.is_alive()
    return outcome["server"], outcome["client"]


def test_same_organisation_handshake_succeeds(org_a):
    server = server_context(Identity.for_component(org_a.root, "sn", 1))
    client = client_context(Identity.for_component(org_a.root, "swci", 1))
    assert handshake(server, client) == (b"ok", b"ok")


def test_organisations_that_exchanged_ca_certs_handshake(tmp_path):
    a = generate_pki(tmp_path / "a", "OrgA", 1, components=("sn",))
    b = generate_pki(tmp_path / "b", "OrgB", 1, components=("sl",))
    a_server = server_context(Identity.for_component(a.root, "sn", 1))
    b_client = client_context(Identity.for_component(b.root, "sl", 1))
    before = handshake(a_server, b_client)
    assert isinstance(before[0], ssl.SSLError) or isinstance(before[1], ssl.SSLError)
    add_trusted_ca(a.capath, b.ca_cert)
    add_trusted_ca(b.capath, a.ca_cert)
    a_server = server_context(Identity.for_component(a.root, "sn", 1))
    b_client = client_context(Identity.for_component(b.root, "sl", 1))
    assert handshake(a_server, b_client) == (b"ok", b"ok")


def test_client_from_an_unknown_ca_is_refused(org_a, org_b):
    server = server_context(Identity.for_component(org_a.root, "sn", 1))
    # The stranger trusts A's CA, so only the server's check of the client can fail.
    stranger = Identity(cert=org_b.cert("sl"), key=org_b.key("sl"), cacert=org_a.ca_cert)
    server_result, client_result = handshake(server, client_context(stranger))
    assert isinstance(server_result, ssl.SSLError)
    assert "certificate verify failed" in str(server_result)
    assert client_result != b"ok"


def test_client_without_a_certificate_is_refused(org_a):
    server = server_context(Identity.for_component(org_a.root, "sn", 1))
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=str(org_a.ca_cert))
    server_result, client_result = handshake(server, anonymous)
    assert isinstance(server_result, ssl.SSLError)
    assert "certificate" in str(server_result).lower()
    assert client_result != b"ok"


def test_server_from_an_unknown_ca_is_refused_by_the_client(org_a, org_b):
    # B's server trusts A's CA (so it would accept the client) but A's client does not trust B.
    server = server_context(Identity(cert=org_b.cert("sn"), key=org_b.key("sn"),
                                     cacert=org_a.ca_cert))
    client = client_context(Identity.for_component(org_a.root, "swci", 1))
    server_result, client_result = handshake(server, client)
    assert isinstance(client_result, ssl.SSLError)
    assert "certificate verify failed" in str(client_result)
    assert server_result != b"ok"
