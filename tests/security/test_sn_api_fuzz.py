"""The SN API under generated requests (schemathesis over its own OpenAPI document): whatever
the path parameters, query and JSON body, the answer is a 2xx or a 4xx with a reason, never a
5xx or a traceback. The app runs in process over a real embedded chain; only the TLS layer is
stood in for, by a fixed client certificate that owns one registered node."""

from __future__ import annotations

import atexit
import datetime
import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from swarmlearning.chain.embedded import EmbeddedChain
from swarmlearning.chain.ledger import Ledger, deploy
from swarmlearning.identity.principal import Principal
from swarmlearning.sn.api import build_app, endpoints
from swarmlearning.sn.service import SwarmService
from swarmlearning.sn.view import SwarmView


def _certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SL-1")])
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def _app():  # noqa: ANN202
    root = Path(tempfile.mkdtemp(prefix="swci-sn-fuzz-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    chain = EmbeddedChain(root)
    w3 = chain.web3()
    sender = w3.eth.accounts[0]
    ledger = Ledger(w3, deploy(w3, sender), sender)
    view = SwarmView(ledger)
    view.load()
    service = SwarmService(ledger, view, checkin_window=0.0, progress_window=0.0)
    der = _certificate()
    service.register_node("fuzz-node", "SL", "127.0.0.1", 30305, "fuzz", "",
                          owner=Principal.of_der(der))
    service.create_contract("fuzz-contract")
    table = endpoints(service, lambda: {"NODE_UID": "fuzz-sn"})
    return build_app(table, "Swarm Network API", service.authorize, lambda scope: der)


# schemathesis needs the schema when the module loads
schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_generated_requests_get_no_server_error(case) -> None:  # noqa: ANN001
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    assert "Traceback" not in response.text


# The OpenAPI document says only "a JSON object" for request bodies, so schemathesis rarely
# reaches a handler. This fuzzer knows each route's fields and fills them with anything JSON
# can carry, near-valid values included, so that requests get past the first checks.
H = "ab" * 32
FIELDS = {
    "/v1/nodes": ("uid", "node_type", "host", "port", "name", "parent", "taskrunner"),
    "/v1/nodes/alive": ("uids",),
    "/v1/contracts": ("name",),
    "/v1/contracts/{name}/reset": (),
    "/v1/contracts/{name}/checkins": ("uid", "round", "contribution", "weight", "flags",
                                      "min_peers"),
    "/v1/contracts/{name}/merges": ("round", "leader", "merged", "participants", "final",
                                    "rejected"),
    "/v1/contracts/{name}/progress": ("uid", "leader", "loss", "metric", "total_epochs",
                                      "completed_epochs"),
    "/v1/tasks": ("Name", "TaskType", "Author", "Prereq", "Outcome"),
    "/v1/tasks/definitions": ("Name", "TaskType", "Author", "Prereq", "Outcome", "Body"),
    "/v1/tasks/{name}/body": ("index", "line"),
    "/v1/tasks/{name}/finalize": (),
    "/v1/taskrunners": ("name",),
    "/v1/taskrunners/{name}/assign": ("task", "peers", "all_peers", "target"),
    "/v1/taskrunners/{name}/enroll": ("swop_uid", "group", "units"),
    "/v1/taskrunners/{name}/peers/{peer}/status": ("status", "description", "detail"),
    "/v1/taskrunners/{name}/reset": (),
}
NEAR_VALID = st.sampled_from(["fuzz-node", "fuzz-contract", "defaultbb.cqdb.sml.hpe",
                              "defaulttaskbb.taskdb.sml.hpe", "ROOTTASK", "SL", "SWOP",
                              "RUN_SWARM", "MAKE_USER_CONTAINER", "ERROR", "COMPLETE", H, "",
                              "127.0.0.1", 0, 1, 3, -1, 2**63, 10**30, 1.5, True])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats() | st.text(max_size=400),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
VALUE = NEAR_VALID | ANY_JSON | st.lists(NEAR_VALID, max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict]:
    route = draw(st.sampled_from(sorted(FIELDS)))
    path = route
    for param in ("{name}", "{peer}"):
        segment = draw(NEAR_VALID.map(str) | st.text(
            st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
        path = path.replace(param, quote(segment, safe=""), 1)
    body = {field: draw(VALUE) for field in FIELDS[route] if draw(st.integers(0, 9)) < 8}
    return path, body


_FUZZ_APP = _app()


@given(requests())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_route_aware_fuzzing_gets_no_server_error(request: tuple[str, dict]) -> None:
    path, body = request
    # Python's JSON reader takes NaN and Infinity, so the server must cope with them too
    raw = json.dumps(body, allow_nan=True).encode()
    with TestClient(_FUZZ_APP, raise_server_exceptions=False) as client:
        response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code < 500, (path, body, response.text)
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        assert response.json()["detail"], (path, body)


def test_bodies_no_parser_can_take_are_refused_with_a_reason() -> None:
    with TestClient(_FUZZ_APP, raise_server_exceptions=False) as client:
        for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"name": ' + b"9" * 5000 + b"}",
                    b"\xff\xfe not utf-8", b"[1, 2]", b"{" * 10):
            response = client.post("/v1/contracts", content=raw,
                                   headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (raw[:40], response.text)
            assert response.json()["detail"], raw[:40]


BIG = "x" * 5000
OVERSIZED = [  # (route, body): one field far over its limit, the rest plausible
    ("/v1/nodes", {"uid": BIG, "node_type": "SL", "host": "h", "port": 1}),
    ("/v1/nodes", {"uid": "u-big-host", "node_type": "SL", "host": BIG, "port": 1}),
    ("/v1/nodes", {"uid": "u-big-name", "node_type": "SL", "host": "h", "port": 1,
                   "name": BIG}),
    ("/v1/nodes/alive", {"uids": [BIG]}),
    ("/v1/contracts", {"name": BIG}),
    ("/v1/contracts/fuzz-contract/checkins", {"uid": BIG, "round": 0, "contribution": H,
                                              "weight": 1, "flags": 1}),
    ("/v1/contracts/fuzz-contract/merges", {"round": 0, "leader": BIG, "merged": H,
                                            "participants": ["fuzz-node"]}),
    ("/v1/contracts/fuzz-contract/progress", {"uid": BIG, "total_epochs": 1,
                                              "completed_epochs": 1}),
    ("/v1/tasks", {"Name": BIG, "TaskType": "RUN_SWARM", "Author": "a", "Prereq": "ROOTTASK",
                   "Outcome": "o"}),
    ("/v1/tasks", {"Name": "t-big-author", "TaskType": "RUN_SWARM", "Author": BIG,
                   "Prereq": "ROOTTASK", "Outcome": "o"}),
    ("/v1/taskrunners", {"name": BIG}),
    ("/v1/taskrunners/defaulttaskbb.taskdb.sml.hpe/enroll", {"swop_uid": BIG}),
]


def _big_field(body: dict) -> str:
    return next(key for key, value in body.items() if value in (BIG, [BIG]))


@pytest.mark.parametrize(("route", "body"), OVERSIZED,
                         ids=[f"{route}:{_big_field(body)}" for route, body in OVERSIZED])
def test_an_oversized_field_is_refused_with_its_limit_named(route: str, body: dict) -> None:
    with TestClient(_FUZZ_APP, raise_server_exceptions=False) as client:
        response = client.post(route, json=body)
    assert response.status_code == 422, (route, response.text[:300])
    detail = response.json()["detail"]
    assert "5000 characters long; the limit is" in detail, detail[:300]
    assert BIG not in detail  # the value itself is not echoed back


def test_a_body_over_the_size_limit_is_refused_with_the_limit_named() -> None:
    with TestClient(_FUZZ_APP, raise_server_exceptions=False) as client:
        response = client.post("/v1/contracts", content=b'{"name": "' + b"x" * (2 << 20) +
                               b'"}', headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["detail"]
