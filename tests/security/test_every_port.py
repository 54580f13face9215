"""Every port of a running swarm refuses whoever is outside its PKI: the chain's JSON-RPC on
the SN p2p port (30303), the SN API (30304), an SL's file server (30305) and the SWCI web API
(30306), all real processes of one workspace. A certificate from an unknown CA, an expired or
not yet valid certificate from the trusted CA, and no certificate at all each get a TLS alert
and no HTTP answer; the workspace's own certificate, on the same ports, gets one."""

from __future__ import annotations

import datetime
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmlearning.identity.pki import generate_pki
from swarmlearning.nodes.workspace import Workspace
from tests.swarm_processes import free_port

REQUEST = b"GET /v1/version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def ports(tmp_path_factory) -> Iterator[tuple[Workspace, dict[str, int]]]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("ports")
    workspace = Workspace(root / "ws")
    try:
        sn = workspace.start_sn("sn1", api_port=free_port(), p2p_port=free_port())
        sl = workspace.start_sl("sl1", fs_port=free_port())
        web = workspace.start_web(port=free_port(), usr_dir=root)
        yield workspace, {"chain JSON-RPC (30303)": sn.ports["p2p"],
                          "SN API (30304)": sn.ports["api"],
                          "SL file server (30305)": sl.ports["fs"],
                          "SWCI web API (30306)": web.ports["web"]}
    finally:
        workspace.stop_all(grace=5)


def leaf(workspace: Workspace, out: Path, *, days_from: int, days_to: int) -> tuple[Path, Path]:
    """A client certificate from the workspace's own CA, valid from `days_from` to `days_to`
    days from now (negative: in the past)."""
    layout = workspace.pki()
    ca_cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(layout.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SL-9")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days_from))
            .not_valid_after(now + datetime.timedelta(days=days_to))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def answer(workspace: Workspace, port: int, cert: tuple[Path, Path] | None) -> bytes | str:
    """The first bytes of the answer to one HTTP request with this client certificate (the
    server's certificate is checked against the workspace's CA), or the error that ended it."""
    context = ssl.create_default_context(cafile=str(workspace.pki().ca_cert))
    context.check_hostname = False
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(REQUEST)
            return tls.recv(64)
    except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


def refused(reply: bytes | str) -> bool:
    return not (isinstance(reply, bytes) and reply.startswith(b"HTTP/"))


def test_the_workspace_identity_gets_an_answer_on_every_port(ports, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, table = ports
    layout = workspace.pki()
    current = leaf(workspace, tmp_path, days_from=-1, days_to=30)  # made like the bad ones
    for label, port in table.items():
        for cert in ((layout.cert("sl"), layout.key("sl")), current):
            reply = answer(workspace, port, cert)
            assert not refused(reply), (label, reply)


@pytest.mark.parametrize("who", ["unknown CA", "expired", "not yet valid", "no certificate"])
def test_outsiders_are_refused_on_every_port(ports, who: str, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, table = ports
    if who == "unknown CA":
        stranger = generate_pki(tmp_path / "stranger", "stranger-org", 1)
        cert = (stranger.cert("sl"), stranger.key("sl"))
    elif who == "expired":
        cert = leaf(workspace, tmp_path, days_from=-30, days_to=-1)
    elif who == "not yet valid":
        cert = leaf(workspace, tmp_path, days_from=1, days_to=30)
    else:
        cert = None
    layout = workspace.pki()
    for label, port in table.items():
        reply = answer(workspace, port, cert)
        # the server's alert (unknown ca, certificate expired, ...) may or may not be read
        # before it closes the connection; either way no HTTP answer comes back
        assert refused(reply), (who, label, reply)
        # and the port still serves its own: the refusal was about the certificate
        own = answer(workspace, port, (layout.cert("sl"), layout.key("sl")))
        assert not refused(own), (who, label, own)


def test_a_deeply_nested_body_is_refused_and_the_sn_lives_on(ports) -> None:  # noqa: ANN001
    """The SN imports py-evm, which raises the recursion limit to 100,000: a JSON reader left
    to itself would overflow the C stack on 100,000 nested arrays and take the process down."""
    workspace, table = ports
    layout = workspace.pki()
    context = ssl.create_default_context(cafile=str(layout.ca_cert))
    context.check_hostname = False
    context.load_cert_chain(str(layout.cert("swci")), str(layout.key("swci")))
    deep = b"[" * 100_000 + b"]" * 100_000
    with httpx.Client(verify=context, timeout=30) as client:
        for label, path in (("SN API (30304)", "/v1/contracts"), ("chain JSON-RPC (30303)", "/")):
            url = f"https://127.0.0.1:{table[label]}{path}"
            reply = client.post(url, content=deep, headers={"content-type": "application/json"})
            if label.startswith("SN API"):
                assert reply.status_code == 400 and "deeper than 64" in reply.json()["detail"]
            else:
                assert reply.json()["error"]["message"] == "parse error"
        version = client.get(f"https://127.0.0.1:{table['SN API (30304)']}/v1/version")
        assert version.status_code == 200
