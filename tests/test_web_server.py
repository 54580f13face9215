"""`swci serve` as a real process with mutual TLS: who may connect, and identities bound to the
TLS connection rather than to anything a request says."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from swarmlearning.identity.pki import generate_pki
from swarmlearning.identity.tls import Identity, client_context, trust_context
from swarmlearning.nodes.workspace import Workspace
from tests.swarm_processes import free_port


@pytest.fixture(scope="module")
def web(tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("web")
    workspace = Workspace(root / "ws")
    usr = root / "usr"
    usr.mkdir()
    record = workspace.start_web(port=free_port(), usr_dir=usr)
    yield workspace, record.ports["web"]
    workspace.stop_all(grace=5)


def connect(workspace: Workspace, port: int, component: str | None) -> httpx.Client:
    layout = workspace.pki()
    if component is None:  # trusts the server, presents nothing
        verify = trust_context(layout.capath, None, check_hostname=False)
    else:
        verify = client_context(Identity(cert=layout.cert(component), key=layout.key(component),
                                         capath=layout.capath), check_hostname=False)
    return httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=10)


def test_only_certificates_of_a_trusted_ca_get_in(web, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, port = web
    with connect(workspace, port, "swci") as client:
        reply = client.post("/exec", params={"cmd": "LIST CONTEXTS"})
        assert reply.status_code == 200 and reply.json()["CONTENT"]
    with connect(workspace, port, None) as anonymous, pytest.raises(httpx.HTTPError):
        anonymous.post("/exec", params={"cmd": "LIST CONTEXTS"})
    stranger = generate_pki(tmp_path / "other", "another-org", 7)
    verify = client_context(Identity(cert=stranger.cert("swci"), key=stranger.key("swci"),
                                     capath=workspace.pki().capath), check_hostname=False)
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=verify,
                      timeout=10) as outsider, pytest.raises(httpx.HTTPError):
        outsider.post("/exec", params={"cmd": "LIST CONTEXTS"})


def test_identity_comes_from_the_connection(web) -> None:  # noqa: ANN001
    workspace, port = web
    with connect(workspace, port, "swci") as swci, connect(workspace, port, "sl") as sl:
        first = swci.get("/whoami").json()
        second = sl.get("/whoami", headers={"x-test-identity": "swci",
                                            "x-client-cert": "swci"}).json()
        assert first["NAME"] == "SWCI-1" and second["NAME"] == "SL-1"
        assert first["IDENTITY"] != second["IDENTITY"]
        before = sl.post("/exec", params={"cmd": "pwd"}).json()["CONTENT"]
        assert swci.post("/exec", params={"cmd": "cd /"}).json()["CONTENT"] == [
            "Current Directory : /"]
        assert swci.post("/exec", params={"cmd": "pwd"}).json()["CONTENT"] == ["/"]
        assert sl.post("/exec", params={"cmd": "pwd"}).json()["CONTENT"] == before != ["/"]
