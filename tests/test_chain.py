"""The Swarm Network's chain layer: the four contracts on the embedded chain, the ledger, the
SN's cached view and the service's HPE semantics, persistence, and the JSON-RPC wire format.

Most tests share one in-memory chain (module scope) and use names of their own; a test that
needs to see the whole state, or a chain on disk, makes a fresh one.
"""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode
from web3 import Web3
from web3.providers.base import JSONBaseProvider

from swarmlearning.chain.embedded import EmbeddedChain
from swarmlearning.chain.ledger import Addresses, ChainRejected, Ledger, deploy, key_of
from swarmlearning.defaults import DEFAULT_CONTRACT, DEFAULT_TASKRUNNER, ROOT_TASK
from swarmlearning.identity.principal import Principal
from swarmlearning.schemas import parse_task_body, task_body_lines
from swarmlearning.sn.service import ServiceError, SwarmService
from swarmlearning.sn.view import SwarmView

T0 = 1_700_000_000
_names = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other test on the shared chain uses."""
    return f"{prefix}-{next(_names)}"


def when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class FakeClock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Swarm:
    chain: EmbeddedChain
    w3: Web3
    addresses: Addresses
    ledger: Ledger
    view: SwarmView
    service: SwarmService
    clock: FakeClock


def connect(chain: EmbeddedChain, w3: Web3, addresses: Addresses | None = None,
            account: int = 0) -> Swarm:
    """An SN's stack over `w3`; deploys the contracts when no addresses are given."""
    sender = w3.eth.accounts[account]
    if addresses is None:
        addresses = deploy(w3, sender)
    ledger = Ledger(w3, addresses, sender)
    view = SwarmView(ledger)
    view.load()
    clock = FakeClock()
    return Swarm(chain, w3, addresses, ledger, view, SwarmService(ledger, view, clock), clock)


def fresh_swarm(data_dir: Any = None) -> Swarm:
    chain = EmbeddedChain(data_dir)
    return connect(chain, chain.web3())


class JsonRoundTripProvider(JSONBaseProvider):
    """Another SN's view of the chain: every request and answer crosses as JSON text."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self.chain = chain
        self.methods: list[str] = []

    def make_request(self, method: Any, params: Any) -> Any:
        request = json.loads(self.encode_rpc_request(method, params))
        self.methods.append(request["method"])
        return json.loads(json.dumps(self.chain.handle_rpc(request)))

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True


@pytest.fixture(scope="module")
def swarm() -> Swarm:
    return fresh_swarm()


@pytest.fixture
def fresh() -> Swarm:
    return fresh_swarm()


@pytest.fixture(scope="module")
def task(swarm: Swarm) -> str:
    """A finalized task on the shared chain (finalized tasks never change)."""
    return finalized_task(swarm.service)


@pytest.fixture(scope="module")
def other_task(swarm: Swarm) -> str:
    return finalized_task(swarm.service)


def refused(status: int, *fragments: str) -> Any:
    """Context manager: a ServiceError with this status whose message holds every fragment."""
    return _Refused(status, fragments)


class _Refused:
    def __init__(self, status: int, fragments: tuple[str, ...]) -> None:
        self.status = status
        self.fragments = fragments
        self._raises = pytest.raises(ServiceError)

    def __enter__(self) -> Any:
        self.info = self._raises.__enter__()
        return self.info

    def __exit__(self, *exc: Any) -> bool:
        if not self._raises.__exit__(*exc):
            return False  # another exception: let it through as it is
        error = self.info.value
        assert error.status == self.status, f"{error.status}: {error.message}"
        for fragment in self.fragments:
            assert fragment in error.message, error.message
        return True


def rejected(reason: str) -> Any:
    return pytest.raises(ChainRejected, match=f"^{re.escape(reason)}$")


def header(name: str, **changes: str) -> dict[str, str]:
    return {"Name": name, "TaskType": "MAKE_USER_CONTAINER", "Author": "tester",
            "Prereq": ROOT_TASK, "Outcome": "user-image", **changes}


def build_task(name: str) -> dict[str, Any]:
    """An HPE-style MAKE_USER_CONTAINER definition."""
    return {**header(name), "Body": {
        "BuildContext": "sl-cli-lib",
        "BuildType": "INLINE",
        "BuildSteps": [
            "FROM tensorflow/tensorflow:2.7.0",
            " ",
            "RUN pip3 install --upgrade pip && \\",
            "    pip3 install \"keras==2.7.*\" matplotlib: 'x' # not a comment?",
            "ENV TF_CPP_MIN_LOG_LEVEL=2",
            "CMD [\"python3\", \"/tmp/test/model/mnist_tf.py\"]",
        ]}}


def finalized_task(service: SwarmService, prefix: str = "task") -> str:
    name = unique(prefix)
    service.create_task(header(name))
    service.append_task_body(name, 1, "line")
    service.finalize_task(name)
    return name


# -- defaults --------------------------------------------------------------------------------------


def test_deploy_creates_the_default_objects(fresh: Swarm) -> None:
    service = fresh.service
    assert service.list_tasks() == [{"NAME": ROOT_TASK, "TYPE": "ROOTTASK",
                                     "STATE": "FINALIZED", "AUTHOR": "swarm"}]
    contracts = service.list_contracts()
    assert [(c["NAME"], c["STATE"], c["ROUND"], c["RESETS"]) for c in contracts] == [
        (DEFAULT_CONTRACT, "INITIALIZED", 0, 0)]
    assert service.list_taskrunners() == [{"NAME": DEFAULT_TASKRUNNER, "STATE": "IDLE",
                                           "TASK": "Empty"}]
    assert service.list_nodes() == []
    assert service.task_body(ROOT_TASK) == ["---"]
    with refused(409, "cannot be deleted"):
        service.delete_task(ROOT_TASK)


def test_roottask_stays_first(swarm: Swarm) -> None:
    swarm.service.create_task(header(unique("later")))
    assert swarm.service.list_tasks()[0]["NAME"] == ROOT_TASK


# -- tasks -----------------------------------------------------------------------------------------


def test_task_is_created_filled_and_finalized(swarm: Swarm) -> None:
    service = swarm.service
    name = unique("mnist")
    info = service.create_task(header(name))
    assert (info["NAME"], info["STATE"], info["BODY_LINES"], info["FINALIZED"]) == (
        name, "CREATED", 0, "-")
    assert info["PREREQ"] == ROOT_TASK and info["TYPE"] == "MAKE_USER_CONTAINER"
    service.append_task_body(name, 1, "first")
    assert service.append_task_body(name, 2, "second")["BODY_LINES"] == 2
    service.append_task_body(name, 1, "first, rewritten")
    assert service.task_body(name) == ["---", "first, rewritten", "second"]
    info = service.finalize_task(name)
    assert info["STATE"] == "FINALIZED" and info["FINALIZED"] == when(T0)
    assert {"NAME": name, "TYPE": "MAKE_USER_CONTAINER", "STATE": "FINALIZED",
            "AUTHOR": "tester"} in service.list_tasks()


def test_finalized_task_cannot_change(swarm: Swarm) -> None:
    service = swarm.service
    name = finalized_task(service)
    with refused(409, name, "a finalized task cannot change"):
        service.append_task_body(name, 2, "more")
    with refused(409, name, "already finalized"):
        service.finalize_task(name)
    with refused(409, name, "a finalized task cannot be deleted"):
        service.delete_task(name)
    assert service.task_body(name) == ["---", "line"]
    assert service.task_info(name)["STATE"] == "FINALIZED"


def test_contract_itself_protects_finalized_task(swarm: Swarm, task: str) -> None:
    name = task
    ledger = swarm.ledger
    with rejected("a finalized task cannot be deleted"):
        ledger.transact("tasks", "delete", name)
    with rejected("task is not open for changes"):
        ledger.transact("tasks", "set_lines", name, 1, ["changed"], T0)
    with rejected("task is already finalized"):
        ledger.transact("tasks", "finalize", name, T0)
    with rejected("task already exists"):
        ledger.transact("tasks", "create", name, "RUN_SWARM", "x", ROOT_TASK, "o", T0)
    with rejected("a finalized task cannot be deleted"):
        ledger.transact("tasks", "delete", ROOT_TASK)
    assert swarm.service.task_body(name) == ["---", "line"]
    assert ledger.read("tasks", "is_finalized", name) is True


def test_contract_checks_body_line_numbers(swarm: Swarm) -> None:
    name = unique("lines")
    swarm.service.create_task(header(name))
    with rejected("body lines are numbered from 1"):
        swarm.ledger.transact("tasks", "set_lines", name, 0, ["x"], T0)
    with rejected("a task body holds at most 80 lines"):
        swarm.ledger.transact("tasks", "set_lines", name, 80, ["x", "y"], T0)
    with rejected("task does not exist"):
        swarm.ledger.transact("tasks", "set_lines", unique("ghost"), 1, ["x"], T0)
    swarm.ledger.transact("tasks", "set_lines", name, 79, ["x", "y"], T0)
    assert swarm.service.task_info(name)["BODY_LINES"] == 80
    assert swarm.service.task_body(name)[-2:] == ["x", "y"]


def test_open_task_can_be_deleted_and_its_name_reused(swarm: Swarm) -> None:
    service = swarm.service
    name = unique("draft")
    service.create_task(header(name))
    service.append_task_body(name, 1, "old body")
    assert service.delete_task(name) == {"DELETED": name}
    assert name not in [row["NAME"] for row in service.list_tasks()]
    with refused(404, name, "does not exist"):
        service.task_info(name)
    with refused(404):
        service.task_body(name)
    service.create_task(header(name, Author="someone else", TaskType="RUN_SWARM"))
    info = service.task_info(name)
    assert (info["AUTHOR"], info["TYPE"], info["BODY_LINES"]) == ("someone else", "RUN_SWARM", 0)
    assert service.task_body(name) == ["---"]
    assert [row["NAME"] for row in service.list_tasks()].count(name) == 1


def test_duplicate_task_name_refused(swarm: Swarm) -> None:
    name = unique("twice")
    swarm.service.create_task(header(name))
    with refused(409, name, "already exists"):
        swarm.service.create_task(header(name, Author="other"))
    assert swarm.service.task_info(name)["AUTHOR"] == "tester"


@pytest.mark.parametrize("field", ["Name", "Author"])
def test_over_long_header_text_refused(swarm: Swarm, field: str) -> None:
    before = swarm.service.list_tasks()
    block = swarm.ledger.block_number()
    task = header(unique("long"))
    task[field] = "n" * 161
    with refused(422, field, "161", "160"):
        swarm.service.create_task(task)
    assert swarm.service.list_tasks() == before
    assert swarm.ledger.block_number() == block
    task[field] = "n" * 160 if field == "Author" else unique("n" * 150)
    assert swarm.service.create_task(task)["NAME"] == task["Name"]


def test_body_line_index_out_of_range_refused(swarm: Swarm) -> None:
    name = unique("index")
    swarm.service.create_task(header(name))
    block = swarm.ledger.block_number()
    for index in (0, 81, -1, True, "1", 1.0, None):
        with refused(422, "1 to 80"):
            swarm.service.append_task_body(name, index, "x")
    assert swarm.service.task_info(name)["BODY_LINES"] == 0
    assert swarm.ledger.block_number() == block


def test_body_line_over_160_characters_refused(swarm: Swarm) -> None:
    name = unique("wide")
    swarm.service.create_task(header(name))
    with refused(422, "161"):
        swarm.service.append_task_body(name, 1, "w" * 161)
    swarm.service.append_task_body(name, 80, "w" * 160)
    assert swarm.service.task_body(name) == ["---", *[""] * 79, "w" * 160]


def test_prereq_must_exist(swarm: Swarm, task: str) -> None:
    missing = unique("missing")
    with refused(422, "Prereq", missing):
        swarm.service.create_task(header(unique("orphan"), Prereq=missing))
    with rejected("prerequisite task does not exist"):
        swarm.ledger.transact("tasks", "create", unique("orphan"), "RUN_SWARM", "a", missing,
                              "o", T0)
    child = unique("child")
    assert swarm.service.create_task(header(child, Prereq=task))["PREREQ"] == task


def test_register_task_stores_the_whole_definition(swarm: Swarm) -> None:
    service = swarm.service
    definition = build_task(unique("build"))
    name = definition["Name"]
    expected = task_body_lines(definition)
    info = service.register_task(definition)
    assert info["NAME"] == name and info["STATE"] == "CREATED"
    assert info["BODY_LINES"] == len(expected) - 1
    body = service.task_body(name)
    assert body == expected
    assert body[0] == "---" and "BuildSteps:" in body
    assert parse_task_body(body) == definition["Body"]
    assert parse_task_body(body[1:]) == definition["Body"]
    service.finalize_task(name)
    with refused(409, "already exists"):
        service.register_task(definition)


@pytest.mark.parametrize(("change", "fragments"), [
    ({"TaskType": "BAKE_CAKE"}, ("TaskType", "BAKE_CAKE")),
    ({"Body": None}, ("Body",)),
    ({"Body": {"BuildContext": None, "BuildType": "INLINE", "BuildSteps": [7]}},
     ("Body.BuildSteps[0]",)),
    ({"Body": {"BuildType": "INLINE", "BuildSteps": ["FROM x"]}}, ("Body", "BuildContext")),
    ({"Name": "x" * 161}, ("Name", "160")),
    ({"Extra": 1}, ("Extra",)),
])
def test_invalid_definition_refused_with_field_path(swarm: Swarm, change: dict[str, Any],
                                                    fragments: tuple[str, ...]) -> None:
    before = swarm.service.list_tasks()
    definition = {**build_task(unique("bad")), **change}
    if change.get("Body", 0) is None:
        del definition["Body"]
    with refused(422, "invalid task definition", *fragments) as info:
        swarm.service.register_task(definition)
    if "Body" in fragments and len(fragments) == 1:
        assert "Body: required key is missing" in info.value.message
    assert swarm.service.list_tasks() == before


def test_register_task_refuses_bodies_the_chain_cannot_hold(swarm: Swarm) -> None:
    before = swarm.service.list_tasks()
    wide = build_task(unique("wide"))
    wide["Body"]["BuildSteps"][2] = "RUN " + "x" * 156
    with refused(422, "Body.BuildSteps[2]", "160"):
        swarm.service.register_task(wide)
    tall = build_task(unique("tall"))
    tall["Body"]["BuildSteps"] = [f"RUN step {i}" for i in range(80)]
    with refused(422, "83 lines", "80"):
        swarm.service.register_task(tall)
    orphan = build_task(unique("orphan"))
    orphan["Prereq"] = unique("nowhere")
    with refused(422, "Prereq"):
        swarm.service.register_task(orphan)
    assert swarm.service.list_tasks() == before


# -- training contracts ----------------------------------------------------------------------------


def checkins(*peers: tuple[bytes, bytes, int]) -> list[tuple[bytes, bytes, int, int]]:
    """Check-in entries with flags 1 (may lead, still training)."""
    return [(*peer, 1) for peer in peers]


def test_training_contract_lifecycle(swarm: Swarm) -> None:
    service, ledger = swarm.service, swarm.ledger
    name = unique("contract")
    key = key_of(name)
    info = service.create_contract(name)
    assert info["NAME"] == name and info["UID"] == "0x" + key.hex()
    assert info["ADDRESS"] == swarm.addresses.trainings
    assert name in [row["NAME"] for row in service.list_contracts()]
    with refused(409, name, "already exists"):
        service.create_contract(name)
    with rejected("contract already exists"):
        ledger.transact("trainings", "create", name, T0)
    with refused(409, "INITIALIZED", "only a completed contract can be reset"):
        service.reset_contract(name)

    a, b, c = (key_of(peer) for peer in ("sl-a", "sl-b", "sl-c"))
    ledger.transact("trainings", "checkin", name, 0,
                    checkins((a, b"\x01" * 32, 10), (b, b"\x02" * 32, 20)), T0)
    assert service.contract_status(name)["STATE"] == "RUNNING"
    ledger.transact("trainings", "checkin", name, 0, checkins((a, b"\x03" * 32, 11)), T0)
    round0 = ledger.read("trainings", "round_checkins", key, 0)
    assert [(bytes(p), bytes(h), w) for p, h, w, _ in round0] == [
        (a, b"\x03" * 32, 11), (b, b"\x02" * 32, 20)]
    with refused(409, "RUNNING"):
        service.reset_contract(name)

    ledger.transact("trainings", "record_merge", name, 0, a, b"\x09" * 32, [a, b],
                    [(c, "its tensor 'w' has NaN values")], False, T0)
    status = service.contract_status(name)
    assert (status["STATE"], status["ROUND"], status["PEERS"]) == ("RUNNING", 1, 2)
    leader, merged, participants, _ = ledger.read("trainings", "round_merge", key, 0)
    assert (bytes(leader), bytes(merged), [bytes(p) for p in participants]) == (
        a, b"\x09" * 32, [a, b])
    assert [(bytes(p), n, r, why) for p, n, r, why in
            ledger.read("trainings", "all_rejections", key)] == [
        (c, 1, 0, "its tensor 'w' has NaN values")]
    with rejected("check-in is not for the current round"):
        ledger.transact("trainings", "checkin", name, 0, checkins((c, b"\x04" * 32, 1)), T0)
    with rejected("merge is not for the current round"):
        ledger.transact("trainings", "record_merge", name, 0, a, b"\x0a" * 32, [a], [], False,
                        T0)
    assert len(ledger.read("trainings", "round_checkins", key, 0)) == 2

    ledger.transact("trainings", "complete", name, T0 + 5)
    assert service.contract_status(name)["STATE"] == "COMPLETED"
    with rejected("contract is completed"):
        ledger.transact("trainings", "checkin", name, 1, checkins((c, b"\x04" * 32, 1)), T0)
    status = service.reset_contract(name)
    assert (status["STATE"], status["ROUND"], status["PEERS"], status["RESETS"]) == (
        "INITIALIZED", 0, 0, 1)
    assert ledger.read("trainings", "round_checkins", key, 0) == []
    assert ledger.read("trainings", "all_rejections", key) == []  # a new generation
    ledger.transact("trainings", "checkin", name, 0, checkins((c, b"\x05" * 32, 1)), T0)
    assert len(ledger.read("trainings", "round_checkins", key, 0)) == 1


def test_same_peer_twice_in_one_batch_counts_once(swarm: Swarm) -> None:
    name = unique("contract")
    swarm.service.create_contract(name)
    peer = key_of("sl-twice")
    swarm.ledger.transact("trainings", "checkin", name, 0,
                          checkins((peer, b"\x01" * 32, 1), (peer, b"\x02" * 32, 2)), T0)
    round0 = swarm.ledger.read("trainings", "round_checkins", key_of(name), 0)
    assert [(bytes(p), bytes(h), w) for p, h, w, _ in round0] == [(peer, b"\x02" * 32, 2)]


def test_progress_is_reported_per_peer(swarm: Swarm) -> None:
    name = unique("contract")
    swarm.service.create_contract(name)
    peer = key_of("sl-progress")
    swarm.ledger.transact("trainings", "report_progress", name,
                          [(peer, "sl-progress", True, 250_000, 900_000, 10, 3, T0)])
    swarm.ledger.transact("trainings", "report_progress", name,
                          [(peer, "sl-progress", True, 125_000, 950_000, 10, 4, T0)])
    assert swarm.service.perfdata(name) == [{"UID": "sl-progress", "ADMIN": "Y", "LOSS": 0.125,
                                             "METRIC": 0.95, "TOTAL_EPOCHS": 10,
                                             "COMPLETED_EPOCHS": 4, "REJECTED": 0,
                                             "LAST_REJECTION": "-"}]


def test_unknown_contract_is_404(swarm: Swarm) -> None:
    name = unique("nothing")
    with refused(404, name):
        swarm.service.contract_status(name)
    with rejected("contract does not exist"):
        swarm.ledger.transact("trainings", "complete", name, T0)


# -- taskrunners -----------------------------------------------------------------------------------


def test_taskrunner_runs_a_task_to_completion(swarm: Swarm, task: str, other_task: str) -> None:
    service, ledger = swarm.service, swarm.ledger
    runner = unique("runner")
    info = service.create_taskrunner(runner)
    assert info["NAME"] == runner and info["ADDRESS"] == swarm.addresses.runners
    with refused(409, "already exists"):
        service.create_taskrunner(runner)
    draft = unique("draft")
    service.create_task(header(draft))
    with refused(409, draft, "not finalized"):
        service.assign_task(runner, draft, peers=2)
    with rejected("task is not finalized"):
        ledger.transact("runners", "assign", runner, draft, 2, False, "", T0)
    with refused(404):
        service.assign_task(runner, unique("no-such-task"), peers=2)
    with refused(422, "peers needed"):
        service.assign_task(runner, task, peers=0)
    with refused(409, "no running task"):
        service.enroll(runner, "swop-a", "group")

    status = service.assign_task(runner, task, peers=2)
    assert (status["TASK"], status["TASK_STATE"], status["PEERS_NEEDED"], status["TASK_TYPE"],
            status["PEER_TYPE"]) == (task, "RUNNING", 2, "MAKE_USER_CONTAINER", "SWOP")
    assert {"NAME": runner, "STATE": "RUNNING", "TASK": task} in service.list_taskrunners()
    other = other_task
    with refused(409, "RUNNING", "RESET TASKRUNNER"):
        service.assign_task(runner, other, peers=1)
    with rejected("taskrunner is busy; reset it first"):
        ledger.transact("runners", "assign", runner, other, 1, False, "", T0)

    assert service.enroll(runner, "swop-a", "group-1")["SWOP_PEER_INDEX"] == 0
    assert service.enroll(runner, "swop-b", "group-2")["SWOP_PEER_INDEX"] == 1
    status = service.taskrunner_status(runner)
    assert (status["ENROLLED_PEERS"], status["ACTIVE_PEERS"]) == (2, 2)
    with refused(409, "not enrolled"):
        service.report(runner, "swop-z", "COMPLETE")
    with refused(422, "RUNNING, COMPLETE or ERROR"):
        service.report(runner, "swop-a", "ENROLLED")

    assert service.report(runner, "swop-a", "RUNNING")["SWOP_PEER_STATUS"] == "RUNNING"
    service.report(runner, "swop-a", "COMPLETE", "built")
    status = service.taskrunner_status(runner)
    assert (status["TASK_STATE"], status["COMPLETED_PEERS"], status["ACTIVE_PEERS"]) == (
        "RUNNING", 1, 1)
    service.report(runner, "swop-b", "COMPLETE")
    status = service.taskrunner_status(runner)
    assert (status["TASK_STATE"], status["COMPLETED_PEERS"], status["FAILED_PEERS"]) == (
        "COMPLETE", 2, [])
    assert status["FINISHED_TS"] == when(T0)
    service.report(runner, "swop-b", "COMPLETE")
    assert service.taskrunner_status(runner)["COMPLETED_PEERS"] == 2

    by_index = service.taskrunner_peer_status(runner, "1")
    assert (by_index["SWOP_UID"], by_index["NAME"], by_index["SWOP_PEER_INDEX"],
            by_index["SWOP_PEER_STATUS"]) == ("swop-b", "group-2", 1, "COMPLETE")
    by_uid = service.taskrunner_peer_status(runner, "swop-a")
    assert (by_uid["SWOP_PEER_INDEX"], by_uid["SWOP_PEER_STATUS_DESC"]) == (0, "built")
    with refused(404, "no index 2"):
        service.taskrunner_peer_status(runner, "2")
    with refused(404, "swop-q"):
        service.taskrunner_peer_status(runner, "swop-q")
    assert [p["SWOP_UID"] for p in service.taskrunner_peers(runner)] == ["swop-a", "swop-b"]

    status = service.reset_taskrunner(runner)
    assert (status["TASK"], status["TASK_STATE"], status["ENROLLED_PEERS"],
            status["COMPLETED_PEERS"], status["ASSIGNED_TS"]) == ("Empty", "IDLE", 0, 0, "-")
    assert service.taskrunner_peers(runner) == []
    with refused(404):
        service.taskrunner_peer_status(runner, "swop-a")
    # after a reset the same SWOPs start over on a new task
    service.assign_task(runner, other, peers=1)
    assert service.enroll(runner, "swop-b", "g")["SWOP_PEER_INDEX"] == 0
    assert service.taskrunner_status(runner)["ENROLLED_PEERS"] == 1


def test_failed_swop_fails_the_task(swarm: Swarm, task: str) -> None:
    service = swarm.service
    runner = unique("runner")
    service.create_taskrunner(runner)
    service.assign_task(runner, task, peers=2)
    service.enroll(runner, "swop-ok", "g")
    service.enroll(runner, "swop-bad", "g")
    service.report(runner, "swop-bad", "ERROR", "docker build failed: no space left")
    status = service.taskrunner_status(runner)
    assert status["TASK_STATE"] == "ERROR"
    assert status["FAILED_PEERS"] == ["swop-bad : docker build failed: no space left"]
    assert status["ACTIVE_PEERS"] == 1
    service.report(runner, "swop-ok", "COMPLETE")
    status = service.taskrunner_status(runner)
    # the task stays failed; the success still counts, for a retry of the failed SWOP
    assert (status["TASK_STATE"], status["COMPLETED_PEERS"]) == ("ERROR", 1)
    peer = service.taskrunner_peer_status(runner, "swop-bad")
    assert (peer["SWOP_PEER_STATUS"], peer["SWOP_PEER_STATUS_DESC"]) == (
        "ERROR", "docker build failed: no space left")
    assert service.reset_taskrunner(runner)["TASK_STATE"] == "IDLE"


def test_target_assignment_on_a_running_taskrunner(swarm: Swarm, task: str,
                                                   other_task: str) -> None:
    service = swarm.service
    runner = unique("runner")
    service.create_taskrunner(runner)
    status = service.assign_task(runner, task, target="swop-first")
    assert (status["TASK_STATE"], status["PEERS_NEEDED"]) == ("RUNNING", 1)
    status = service.assign_task(runner, task, target="swop-second")
    assert (status["TASK_STATE"], status["PEERS_NEEDED"]) == ("RUNNING", 2)
    with refused(409, "runs task", "TARGET adds a SWOP to the running task only"):
        service.assign_task(runner, other_task, target="swop-third")
    with rejected("taskrunner runs another task"):
        swarm.ledger.transact("runners", "assign", runner, other_task, 1, False, "swop-third", T0)
    with refused(409, "targeted at another SWOP"):
        service.enroll(runner, "swop-stranger", "g")
    service.enroll(runner, "swop-first", "g")
    service.report(runner, "swop-first", "COMPLETE")
    assert service.taskrunner_status(runner)["TASK_STATE"] == "RUNNING"
    service.enroll(runner, "swop-second", "g")
    service.report(runner, "swop-second", "COMPLETE")
    assert service.taskrunner_status(runner)["TASK_STATE"] == "COMPLETE"
    with refused(409, "COMPLETE", "RESET TASKRUNNER"):
        service.assign_task(runner, task, target="swop-third")


def test_all_peers_needs_every_live_swop(fresh: Swarm) -> None:
    service, clock = fresh.service, fresh.clock
    clock.now = T0
    name = finalized_task(service)
    runner = unique("runner")
    service.create_taskrunner(runner)
    with refused(409, "WITH ALL PEERS needs live SWOPs"):
        service.assign_task(runner, name, all_peers=True)
    service.register_node("swop-1", "SWOP", "127.0.0.1", 0, "a", "", taskrunner=runner)
    service.register_node("swop-2", "SWOP", "127.0.0.1", 0, "b", "", taskrunner=runner)
    service.register_node("sl-1", "SL", "127.0.0.1", 1, "sl", "")
    clock.now = T0 + 100
    service.register_node("swop-3", "SWOP", "127.0.0.1", 0, "c", "", taskrunner=runner)
    service.register_node("swop-elsewhere", "SWOP", "127.0.0.1", 0, "d", "",
                          taskrunner="another-runner")
    service.flush_alive(["swop-1"])
    assert {row["UUID"]: (row["ContainerName"], row["TASKRUNNER"])
            for row in service.list_nodes() if row["NodeType"] == "SWOP"}["swop-3"] == (
        "c", runner)
    with refused(422, "only a SWOP"):
        service.register_node("sl-2", "SL", "127.0.0.1", 1, "sl", "", taskrunner=runner)
    with refused(422, "may not contain"):
        service.register_node("sl-2", "SL", "127.0.0.1", 1, "a|b", "")
    # swop-2 has not reported for 100 s, swop-elsewhere listens on another taskrunner: two
    status = service.assign_task(runner, name, all_peers=True)
    assert (status["TASK_STATE"], status["PEERS_NEEDED"], status["SWOPS_NEEDED"]) == (
        "RUNNING", "ALL", 2)
    service.enroll(runner, "swop-1", "g", units=3)
    service.enroll(runner, "swop-3", "g")
    service.report(runner, "swop-1", "COMPLETE")
    assert service.taskrunner_status(runner)["TASK_STATE"] == "RUNNING"
    service.report(runner, "swop-3", "COMPLETE")
    status = service.taskrunner_status(runner)
    assert (status["TASK_STATE"], status["COMPLETED_PEERS"]) == ("COMPLETE", 4)


def test_units_fill_the_quorum_and_close_enrolment(swarm: Swarm, task: str) -> None:
    service = swarm.service
    runner = unique("runner")
    service.create_taskrunner(runner)
    service.assign_task(runner, task, peers=3)
    with refused(422, "units"):
        service.enroll(runner, "swop-a", "g", units=0)
    service.enroll(runner, "swop-a", "g", units=2)
    service.enroll(runner, "swop-b", "g", units=2)
    with refused(409, "has all the peers it needs"):
        service.enroll(runner, "swop-c", "g")
    status = service.taskrunner_status(runner)
    assert (status["ENROLLED_PEERS"], status["ENROLLED_UNITS"]) == (2, 4)
    service.report(runner, "swop-a", "COMPLETE")
    assert service.taskrunner_status(runner)["TASK_STATE"] == "RUNNING"
    service.report(runner, "swop-b", "COMPLETE")
    assert service.taskrunner_status(runner)["COMPLETED_PEERS"] == 4
    assert service.taskrunner_status(runner)["TASK_STATE"] == "COMPLETE"
    with refused(409, "has no running task"):
        service.enroll(runner, "swop-a", "g")


def test_a_failed_swop_retries_by_target(swarm: Swarm, task: str, other_task: str) -> None:
    service = swarm.service
    runner = unique("runner")
    service.create_taskrunner(runner)
    service.assign_task(runner, task, peers=2)
    service.enroll(runner, "swop-a", "g")
    service.enroll(runner, "swop-b", "g")
    service.report(runner, "swop-b", "ERROR", "ML user1 exited with code 3",
                    "Traceback (most recent call last):\nValueError: bad data")
    service.report(runner, "swop-a", "COMPLETE")
    status = service.taskrunner_status(runner)
    assert (status["TASK_STATE"], status["COMPLETED_PEERS"]) == ("ERROR", 1)
    assert status["FAILURE_DETAILS"] == {
        "swop-b": "Traceback (most recent call last):\nValueError: bad data"}
    assert service.taskrunner_peer_status(runner, "swop-b")["SWOP_PEER_DETAIL"].endswith(
        "bad data")
    with refused(409, "has failed; ASSIGN TASK", "TARGET <SWOP-UID>"):
        service.enroll(runner, "swop-b", "g")
    with refused(409, "runs task"):
        service.assign_task(runner, other_task, target="swop-b")
    with rejected("that SWOP already completed this task"):
        swarm.ledger.transact("runners", "assign", runner, task, 1, False, "swop-a", T0)
    status = service.assign_task(runner, task, target="swop-b")
    assert (status["TASK_STATE"], status["FAILED_PEERS"], status["PEERS_NEEDED"]) == (
        "RUNNING", [], 2)
    peer = service.taskrunner_peer_status(runner, "swop-b")
    assert (peer["SWOP_PEER_STATUS"], peer["SWOP_PEER_DETAIL"]) == ("ENROLLED", "")
    service.enroll(runner, "swop-b", "g")
    service.report(runner, "swop-b", "COMPLETE")
    assert service.taskrunner_status(runner)["TASK_STATE"] == "COMPLETE"
    with refused(422, "detail"):
        service.report(runner, "swop-b", "ERROR", "x", "y" * 1025)


# -- nodes -----------------------------------------------------------------------------------------


def test_nodes_register_beat_and_leave(fresh: Swarm) -> None:
    service, clock = fresh.service, fresh.clock
    clock.now = T0
    assert service.register_node("uid-sn", "SENTINEL", "10.0.0.1", 30304, "sn-1", "") == {
        "UUID": "uid-sn"}
    service.register_node("uid-sl", "SL", "10.0.0.2", 30305, "sl-1", "uid-sn")
    nodes = service.list_nodes()
    # HPE's seven columns, then what this SN adds: a SWOP's taskrunner, and the age of the last
    # sign of life by the SN's own clock (so that a reader's clock does not matter)
    assert [set(row) for row in nodes] == [{"NodeType", "HostIP", "Port", "ContainerName",
                                            "UUID", "ParentUUID", "i-am-alive", "TASKRUNNER",
                                            "SECONDS_SINCE_ALIVE"}] * 2
    assert nodes == [
        {"NodeType": "SENTINEL", "HostIP": "10.0.0.1", "Port": 30304, "ContainerName": "sn-1",
         "UUID": "uid-sn", "ParentUUID": "", "i-am-alive": when(T0), "TASKRUNNER": "",
         "SECONDS_SINCE_ALIVE": 0},
        {"NodeType": "SL", "HostIP": "10.0.0.2", "Port": 30305, "ContainerName": "sl-1",
         "UUID": "uid-sl", "ParentUUID": "uid-sn", "i-am-alive": when(T0), "TASKRUNNER": "",
         "SECONDS_SINCE_ALIVE": 0}]
    with refused(422, "node type"):
        service.register_node("uid-x", "MINER", "10.0.0.3", 1, "", "")

    clock.now = T0 + 60
    assert service.note_alive(["uid-sl", "uid-unknown"]) == {"PENDING": 2}
    service.flush_alive(["uid-sn"])
    assert [row["i-am-alive"] for row in service.list_nodes()] == [when(T0 + 60)] * 2
    assert [row["UUID"] for row in service.list_nodes()] == ["uid-sn", "uid-sl"]
    clock.now = T0 + 120
    service.flush_alive(["uid-sn"])
    assert [row["i-am-alive"] for row in service.list_nodes()] == [when(T0 + 120),
                                                                    when(T0 + 60)]

    service.deregister_node("uid-sl")
    assert [row["UUID"] for row in service.list_nodes()] == ["uid-sn"]
    with refused(409, "node is not registered"):
        service.deregister_node("uid-unknown")
    # re-registering brings it back in its old place
    service.register_node("uid-sl", "SL", "10.0.0.9", 30305, "sl-1", "uid-sn")
    assert [(row["UUID"], row["HostIP"]) for row in service.list_nodes()] == [
        ("uid-sn", "10.0.0.1"), ("uid-sl", "10.0.0.9")]



def test_a_node_uid_keeps_the_owner_that_registered_it_first(fresh: Swarm) -> None:
    """The registry binds a UID to its first owner; the contract refuses any other, even from
    an SN that skips its own check (another organisation's SN writes to the same chain)."""
    service, ledger = fresh.service, fresh.service.ledger
    first = Principal(b"\x01" * 32, "CN=SL-1")
    other = Principal(b"\x02" * 32, "CN=SL-2")
    service.register_node("uid-owned", "SL", "10.0.0.2", 30305, "sl-1", "", owner=first)
    service.authorize(["uid-owned"], first)
    with refused(403, "registered to another identity"):
        service.register_node("uid-owned", "SL", "10.0.0.3", 30305, "sl-1", "", owner=other)
    with refused(403, "belongs to another identity"):
        service.authorize(["uid-owned"], other)
    with refused(403, "is not registered"):
        service.authorize(["uid-nobody"], first)
    with pytest.raises(ChainRejected, match="registered to another identity"):
        ledger.transact("nodes", "register", "uid-owned", "SL", "10.0.0.3", 30305, "sl-1", "",
                        other.key, T0)
    with pytest.raises(ChainRejected, match="node owner is empty"):
        ledger.transact("nodes", "register", "uid-new", "SL", "10.0.0.3", 30305, "sl-1", "",
                        b"\x00" * 32, T0)
    service.register_node("uid-owned", "SL", "10.0.0.4", 30305, "sl-1", "", owner=first)
    assert [row["HostIP"] for row in service.list_nodes() if row["UUID"] == "uid-owned"] == [
        "10.0.0.4"]


def test_a_swop_that_goes_silent_mid_task_is_reported_by_its_own_sn(fresh: Swarm) -> None:
    """A SWOP killed mid-task cannot say so: its SN reports ERROR for it once it has sent no
    sign of life for the alive window, so WAIT FOR TASKRUNNER ends with the reason, and TARGET
    retries it. Other SNs' SWOPs, live ones and finished ones are left alone."""
    service, clock = fresh.service, fresh.clock
    clock.now = T0
    name = finalized_task(service)
    runner = unique("runner")
    service.create_taskrunner(runner)
    for uid, parent in (("swop-dead", "sn-1"), ("swop-live", "sn-1"), ("swop-done", "sn-1"),
                        ("swop-other", "sn-2")):
        service.register_node(uid, "SWOP", "127.0.0.1", 0, uid, parent, taskrunner=runner)
    service.assign_task(runner, name, peers=4)
    for uid in ("swop-dead", "swop-live", "swop-done", "swop-other"):
        service.enroll(runner, uid, "g")
    service.report(runner, "swop-done", "COMPLETE")
    assert service.fail_silent_swops("sn-1") == []  # everyone is within the window
    clock.now = T0 + int(service.alive_window) + 5
    service.note_alive(["swop-live"])
    service.flush_alive(["sn-1"])
    assert service.fail_silent_swops("sn-1") == ["swop-dead"]
    status = service.taskrunner_status(runner)
    assert status["TASK_STATE"] == "ERROR"
    assert status["FAILED_PEERS"] == [
        f"swop-dead : SWOP swop-dead sent no sign of life for {int(service.alive_window) + 5} s "
        f"(since {when(T0)}); its part of task {name} is lost"]
    assert status["FAILURE_DETAILS"]["swop-dead"].endswith("TARGET swop-dead retries it once "
                                                          "the SWOP is back")
    assert service.fail_silent_swops("sn-1") == []  # reported once
    status = service.assign_task(runner, name, target="swop-dead")
    assert status["TASK_STATE"] == "RUNNING"

# -- another writer --------------------------------------------------------------------------------


def test_view_follows_another_writer(swarm: Swarm) -> None:
    provider = JsonRoundTripProvider(swarm.chain)
    other = connect(swarm.chain, Web3(provider), swarm.addresses, account=1)
    assert other.ledger.sender != swarm.ledger.sender

    name = unique("shared")
    swarm.service.create_task(header(name))
    assert other.service.task_info(name)["STATE"] == "CREATED"
    other.service.append_task_body(name, 1, "from the other SN")
    other.service.finalize_task(name)
    assert swarm.service.task_info(name)["STATE"] == "FINALIZED"
    assert swarm.service.task_body(name) == ["---", "from the other SN"]

    contract = unique("contract")
    other.service.create_contract(contract)
    assert contract in [row["NAME"] for row in swarm.service.list_contracts()]
    runner = unique("runner")
    swarm.service.create_taskrunner(runner)
    swarm.service.assign_task(runner, name, peers=1)
    other.service.enroll(runner, "swop-remote", "g")
    assert swarm.service.taskrunner_status(runner)["ENROLLED_PEERS"] == 1
    other.service.report(runner, "swop-remote", "COMPLETE")
    assert swarm.service.taskrunner_status(runner)["TASK_STATE"] == "COMPLETE"
    assert other.view.block == swarm.view.block == swarm.ledger.block_number()
    assert "eth_getLogs" in provider.methods

    # a refusal crosses the wire with the contract's reason
    with rejected("a finalized task cannot be deleted"):
        other.ledger.transact("tasks", "delete", name)
    with refused(409, "not enrolled"):
        other.service.report(runner, "swop-stranger", "COMPLETE")


# -- persistence -----------------------------------------------------------------------------------


def test_chain_survives_a_restart(tmp_path) -> None:
    first = fresh_swarm(tmp_path)
    assert first.chain.resumed is False
    name = finalized_task(first.service, "kept")
    block = first.ledger.block_number()
    first.chain.close()

    chain = EmbeddedChain(tmp_path)
    try:
        assert chain.resumed is True
        again = connect(chain, chain.web3(), first.addresses)
        assert again.ledger.block_number() == block
        assert again.service.task_info(name)["STATE"] == "FINALIZED"
        assert again.service.task_body(name) == ["---", "line"]
        # and it goes on from there
        later = unique("later")
        again.service.create_task(header(later, Prereq=name))
        assert again.ledger.block_number() == block + 1
        assert [row["NAME"] for row in again.service.list_tasks()] == [ROOT_TASK, name, later]
    finally:
        chain.close()


def test_acknowledged_writes_survive_a_crash(tmp_path) -> None:
    crashed = fresh_swarm(tmp_path)
    addresses = crashed.addresses
    name = unique("unclosed")
    crashed.service.create_task(header(name))
    # no close(): the writer's connection is still open, yet the write is already on disk
    chain = EmbeddedChain(tmp_path)
    try:
        assert chain.resumed is True
        assert connect(chain, chain.web3(), addresses).service.task_info(name)["NAME"] == name
    finally:
        chain.close()
    del crashed
    gc.collect()
    chain = EmbeddedChain(tmp_path)
    try:
        service = connect(chain, chain.web3(), addresses).service
        assert service.task_info(name)["STATE"] == "CREATED"
    finally:
        chain.close()


# -- JSON-RPC wire format --------------------------------------------------------------------------


def rpc(method: str, params: list[Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []}


def no_integers(value: Any) -> bool:
    if isinstance(value, dict):
        return all(no_integers(item) for item in value.values())
    if isinstance(value, list):
        return all(no_integers(item) for item in value)
    return isinstance(value, str | bool) or value is None


def test_block_number_is_a_hex_quantity(swarm: Swarm) -> None:
    answer = swarm.chain.handle_rpc(rpc("eth_blockNumber", request_id=7))
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 7
    assert isinstance(answer["result"], str) and answer["result"].startswith("0x")
    assert int(answer["result"], 16) == swarm.w3.eth.block_number


def test_block_is_in_wire_format(swarm: Swarm) -> None:
    answer = swarm.chain.handle_rpc(rpc("eth_getBlockByNumber", ["latest", False]))
    block = answer["result"]
    assert no_integers(block), block
    assert int(block["number"], 16) == swarm.w3.eth.block_number
    assert len(block["logsBloom"]) == 2 + 512
    json.dumps(answer)


def test_call_and_revert_over_json_rpc(swarm: Swarm) -> None:
    tasks = swarm.ledger.contracts["tasks"]
    count = swarm.chain.handle_rpc(rpc("eth_call", [
        {"to": swarm.addresses.tasks, "data": tasks.encode_abi("task_count")}, "latest"]))
    assert int(count["result"], 16) == swarm.ledger.read("tasks", "task_count")

    answer = swarm.chain.handle_rpc(rpc("eth_call", [
        {"to": swarm.addresses.tasks, "data": tasks.encode_abi("delete", args=[ROOT_TASK])},
        "latest"]))
    assert "result" not in answer
    error = answer["error"]
    assert error["code"] == 3
    assert "a finalized task cannot be deleted" in error["message"]
    assert error["data"].startswith("0x08c379a0")
    reason = decode(["string"], bytes.fromhex(error["data"][10:]))[0]
    assert reason == "a finalized task cannot be deleted"
    json.dumps(answer)


def test_batch_request(swarm: Swarm) -> None:
    answer = swarm.chain.handle_rpc([rpc("eth_blockNumber", request_id=1),
                                     rpc("eth_chainId", request_id="two"),
                                     rpc("eth_noSuchMethod", request_id=3)])
    assert isinstance(answer, list) and [item["id"] for item in answer] == [1, "two", 3]
    assert int(answer[0]["result"], 16) == swarm.w3.eth.block_number
    assert int(answer[1]["result"], 16) == swarm.w3.eth.chain_id
    assert "error" in answer[2] and "result" not in answer[2]


@pytest.mark.parametrize("payload", [
    "garbage", None, 42, {}, {"id": 3}, {"method": 7, "id": 4}, [],
    rpc("eth_noSuchMethod"), rpc("nonsense"),
    rpc("eth_getBalance", ["not an address", "latest"]),
    {"jsonrpc": "2.0", "id": 5, "method": "eth_call", "params": {"to": "0x00"}},
    {"jsonrpc": "2.0", "id": 6, "method": "eth_getBalance", "params": "0x00"},
    rpc("eth_call", [{"to": "0x" + "00" * 20, "data": "0xzz"}, "latest"]),
], ids=repr)
def test_garbage_gets_a_json_rpc_error(swarm: Swarm, payload: Any) -> None:
    answer = swarm.chain.handle_rpc(payload)
    assert isinstance(answer, dict), answer
    assert set(answer) == {"jsonrpc", "id", "error"}
    assert isinstance(answer["error"]["code"], int) and answer["error"]["message"]
    json.dumps(answer)


def test_garbage_inside_a_batch(swarm: Swarm) -> None:
    answer = swarm.chain.handle_rpc(["garbage", rpc("eth_blockNumber", request_id=2)])
    assert answer[0]["error"]["code"] == -32600
    assert answer[1]["id"] == 2 and answer[1]["result"].startswith("0x")


def test_a_target_joining_a_running_task_leaves_it_open_to_others(fresh: Swarm) -> None:
    service, clock = fresh.service, fresh.clock
    clock.now = T0
    name = finalized_task(service)
    runner = unique("runner")
    service.create_taskrunner(runner)
    service.assign_task(runner, name, peers=3)
    service.enroll(runner, "swop-a", "g")
    assert service.assign_task(runner, name, target="swop-t")["PEERS_NEEDED"] == 4
    service.enroll(runner, "swop-b", "g")  # still open: the target is an extra allowance
    service.enroll(runner, "swop-t", "g", units=2)
    status = service.taskrunner_status(runner)
    assert (status["PEERS_NEEDED"], status["ENROLLED_UNITS"]) == (5, 4)
    # a SWOP enrolling again with other units is counted once
    service.enroll(runner, "swop-b", "g", units=3)
    assert service.taskrunner_status(runner)["ENROLLED_UNITS"] == 6
    # WITH ALL PEERS counts SWOPs: a targeted SWOP adds one, whatever its units
    other = unique("runner")
    service.create_taskrunner(other)
    service.register_node("swop-live", "SWOP", "127.0.0.1", 0, "x", "", taskrunner=other)
    assert service.assign_task(other, name, all_peers=True)["SWOPS_NEEDED"] == 1
    assert service.assign_task(other, name, target="swop-t")["SWOPS_NEEDED"] == 2
    service.enroll(other, "swop-t", "g", units=3)
    service.enroll(other, "swop-live", "g", units=2)
    assert service.taskrunner_status(other)["SWOPS_NEEDED"] == 2
    service.report(other, "swop-t", "COMPLETE")
    assert service.taskrunner_status(other)["TASK_STATE"] == "RUNNING"
    service.report(other, "swop-live", "COMPLETE")
    assert service.taskrunner_status(other)["TASK_STATE"] == "COMPLETE"
