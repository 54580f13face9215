"""A node's UID belongs to the identity that registered it: real SN process, mutual TLS, two
organisations that trust each other. A peer of one organisation cannot register, check in,
merge, report progress, signal liveness or deregister for a node of the other, and the chain
itself refuses a second owner."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from swarmlearning.identity.pki import PkiLayout, generate_pki
from swarmlearning.identity.tls import Identity, client_context
from tests.swarm_processes import SN, exchange_cas, make_orgs

H = "ab" * 32


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("identity")
    orgs = make_orgs(root / "pki", "a", "b")
    exchange_cas(orgs["a"], orgs["b"])
    sentinel = SN("sn1", orgs["a"], root / "sn1", root / "logs" / "sn1.log")
    try:
        sentinel.start().wait_ready()
        yield {"root": root, "orgs": orgs, "sn": sentinel}
    finally:
        assert sentinel.stop() == 0, sentinel.log()[-3000:]


def client(swarm: dict, org: str, component: str = "sl") -> httpx.Client:
    layout: PkiLayout = swarm["orgs"][org]
    identity = Identity(cert=layout.cert(component), key=layout.key(component),
                        capath=layout.capath)
    return httpx.Client(base_url=f"https://127.0.0.1:{swarm['sn'].api_port}",
                        verify=client_context(identity), timeout=15)


def register(http: httpx.Client, uid: str, port: int = 40000) -> httpx.Response:
    return http.post("/v1/nodes", json={"uid": uid, "node_type": "SL", "host": "127.0.0.1",
                                        "port": port, "name": uid})


def checkin(http: httpx.Client, contract: str, uid: str) -> httpx.Response:
    return http.post(f"/v1/contracts/{contract}/checkins",
                     json={"uid": uid, "round": 0, "contribution": H, "weight": 1, "flags": 1,
                           "min_peers": 1})


def new_contract(swarm: dict) -> str:
    name = f"identity-{uuid.uuid4().hex[:8]}"
    with client(swarm, "a", "swci") as http:
        assert http.post("/v1/contracts", json={"name": name}).status_code == 201
    return name


def refused(reply: httpx.Response, *words: str) -> None:
    assert reply.status_code == 403, (reply.status_code, reply.text)
    detail = reply.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_only_the_registering_identity_can_register_a_uid_again(swarm: dict) -> None:
    uid = f"sl-{uuid.uuid4().hex[:8]}"
    with client(swarm, "a") as a, client(swarm, "b") as b:
        assert register(a, uid).status_code == 201
        refused(register(b, uid, 40001), uid, "registered to another identity",
                "CN=SL-2")
        assert register(a, uid, 40002).status_code == 201  # its owner may move it
        nodes = {n["UUID"]: n for n in a.get("/v1/nodes").json()}
        assert nodes[uid]["Port"] == 40002


def test_a_peer_cannot_act_for_another_nodes_uid(swarm: dict) -> None:
    contract = new_contract(swarm)
    victim, attacker = f"sl-{uuid.uuid4().hex[:8]}", f"sl-{uuid.uuid4().hex[:8]}"
    with client(swarm, "a") as a, client(swarm, "b") as b:
        assert register(a, victim).status_code == 201
        assert register(b, attacker, 40003).status_code == 201
        base = f"/v1/contracts/{contract}"
        for reply in (
                checkin(b, contract, victim),
                b.post(f"{base}/merges", json={"round": 0, "leader": victim, "merged": H,
                                               "participants": [victim], "final": False}),
                b.post(f"{base}/progress", json={"uid": victim, "loss": 0.1, "metric": 0.9,
                                                 "total_epochs": 1, "completed_epochs": 1}),
                b.post("/v1/nodes/alive", json={"uids": [attacker, victim]}),
                b.delete(f"/v1/nodes/{victim}")):
            refused(reply, victim, "belongs to another identity", "CN=SL-2")
        # nothing of that reached the chain: the victim is still listed, nobody checked in
        assert victim in {n["UUID"] for n in a.get("/v1/nodes").json()}
        assert b.get(f"{base}/rounds/0").json()["checkins"] == []
        # each may act for its own node
        assert checkin(b, contract, attacker).status_code == 200
        answer = checkin(a, contract, victim)
        assert answer.status_code == 200, answer.text
        assert {c["uid"] for c in answer.json()["checkins"]} == {victim, attacker}


def test_an_unregistered_uid_cannot_check_in(swarm: dict) -> None:
    contract = new_contract(swarm)
    with client(swarm, "a") as a:
        refused(checkin(a, contract, "never-registered"), "never-registered",
                "is not registered")


def test_a_renewed_certificate_keeps_its_nodes(swarm: dict, tmp_path: Path) -> None:
    """gen-cert run again re-issues every leaf (new keys) from the same CA under the same
    names: the nodes stay their owner's."""
    contract = new_contract(swarm)
    uid = f"sl-{uuid.uuid4().hex[:8]}"
    with client(swarm, "a") as a:
        assert register(a, uid).status_code == 201
    layout = swarm["orgs"]["a"]
    before = layout.cert("sl").read_bytes()
    generate_pki(layout.root.parent, "org-a", layout.index)
    assert layout.cert("sl").read_bytes() != before
    with client(swarm, "a") as renewed:
        assert checkin(renewed, contract, uid).status_code == 200


def test_nodes_the_shell_starts_in_one_organisation_are_separate_identities(
        tmp_path: Path) -> None:
    """START SL gives every SL its own certificate from the organisation's CA: sl1 cannot
    report liveness or check in for sl2, though both belong to one organisation."""
    from swarmlearning.nodes.workspace import Workspace
    from tests.swarm_processes import free_port

    workspace = Workspace(tmp_path / "ws")
    api = free_port()
    try:
        workspace.start_sn("sn1", sentinel=True, api_port=api, p2p_port=free_port())
        for name in ("sl1", "sl2"):
            workspace.start_sl(name, fs_port=free_port())
        uids = {name: (workspace.root / "data" / name / "node-uid").read_text().strip()
                for name in ("sl1", "sl2")}
        own = workspace.node_identity("sl", "sl1")
        assert own.cert != workspace.node_identity("sl", "sl2").cert
        with httpx.Client(base_url=f"https://127.0.0.1:{api}", verify=client_context(own),
                          timeout=15) as sl1:
            refused(sl1.post("/v1/nodes/alive", json={"uids": [uids["sl2"]]}), uids["sl2"],
                    "belongs to another identity", "CN=SL-1-sl1")
            refused(checkin(sl1, "defaultbb.cqdb.sml.hpe", uids["sl2"]), uids["sl2"])
            assert sl1.post("/v1/nodes/alive",
                            json={"uids": [uids["sl1"]]}).status_code == 200
    finally:
        workspace.stop_all(grace=5)
