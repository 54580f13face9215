"""The SN's sync-round service on the embedded chain: batched check-ins, the round long poll,
the leader's merge record and completion, and progress for PERFDATA."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from swarmlearning.chain.ledger import key_of
from swarmlearning.sn.batching import Batcher
from swarmlearning.sn.service import ServiceError
from tests.test_chain import Swarm, fresh_swarm, unique

H = "ab" * 32


@pytest.fixture(scope="module")
def swarm() -> Iterator[Swarm]:
    swarm = fresh_swarm()
    for index in range(1, 5):
        swarm.service.register_node(f"sl-{index}", "SL", "127.0.0.1", 40000 + index,
                                    f"sl{index}", "sn-uid")
    yield swarm
    swarm.chain.close()


def test_check_ins_that_arrive_together_are_one_transaction(swarm: Swarm) -> None:
    name = unique("rounds")
    swarm.service.create_contract(name)
    before = swarm.service.checkins.transactions
    errors: list[BaseException] = []

    def check_in(index: int) -> None:
        try:
            swarm.service.checkin(name, f"sl-{index}", 0, f"{index:02d}" * 32, index, 1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=check_in, args=(i,)) for i in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert swarm.service.checkins.transactions - before == 1
    status = swarm.service.sync_round(name, "current")
    assert len(status["checkins"]) == 3
    assert {(c["uid"], c["weight"], c["port"], c["may_lead"], c["done"])
            for c in status["checkins"]} == {(f"sl-{i}", i, 40000 + i, True, False)
                                             for i in (1, 2, 3)}
    assert status["merge"] is None and status["expected_peers"] == 3


def test_a_round_ends_with_the_leaders_merge_and_the_final_one_completes(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    with pytest.raises(ServiceError) as stale:
        service.checkin(name, "sl-1", 1, H, 1, 1)
    assert stale.value.status == 409 and "round 0" in stale.value.message
    service.checkin(name, "sl-1", 0, H, 1, 1)
    service.checkin(name, "sl-2", 0, H, 1, 0)
    done = service.record_merge(name, 0, "sl-1", "cd" * 32, ["sl-1", "sl-2"], False)
    assert done["merge"]["leader"] == "sl-1" and done["merge"]["participants"] == ["sl-1", "sl-2"]
    assert done["current_round"] == 1 and done["state"] == "RUNNING"
    with pytest.raises(ServiceError) as twice:
        service.record_merge(name, 0, "sl-2", "ef" * 32, ["sl-2"], False)
    assert twice.value.status == 409
    status = service.contract_status(name)
    assert (status["ROUND"], status["CHECKED_IN"], status["LAST_LEADER"]) == (1, 0, "sl-1")
    service.checkin(name, "sl-1", 1, H, 1, 3)
    service.checkin(name, "sl-2", 1, H, 1, 2)
    final = service.record_merge(name, 1, "sl-1", "cd" * 32, ["sl-1", "sl-2"], True)
    assert final["state"] == "COMPLETED" and all(c["done"] for c in final["checkins"])
    with pytest.raises(ServiceError) as completed:
        service.checkin(name, "sl-1", 2, H, 1, 1)
    assert completed.value.status == 409 and "RESET CONTRACT" in completed.value.message


def test_perfdata_counts_each_peers_rejected_contributions_with_the_latest_reason(
        swarm: Swarm) -> None:
    name = unique("rejections")
    service = swarm.service
    service.create_contract(name)
    service.report_progress(name, "sl-1", True, 0.5, 0.8, 4, 1)
    service.report_progress(name, "sl-2", False, 0.6, 0.7, 4, 1)
    for number, reason in enumerate(["tensor 'w' has NaN values", "far from the others"]):
        for uid in ("sl-1", "sl-2", "sl-3"):
            service.checkin(name, uid, number, H, 1, 1)
        service.record_merge(name, number, "sl-1", "cd" * 32, ["sl-1"], False,
                             [{"uid": "sl-2", "reason": reason},
                              {"uid": "sl-3", "reason": "does not match its SHA-256"}])
    rows = {row["UID"]: row for row in service.perfdata(name)}
    assert (rows["sl-1"]["REJECTED"], rows["sl-1"]["LAST_REJECTION"]) == (0, "-")
    assert (rows["sl-2"]["REJECTED"], rows["sl-2"]["LAST_REJECTION"]) == (
        2, "round 1: far from the others")
    assert rows["sl-2"]["METRIC"] == 0.7
    # a peer that never reported progress still shows, with empty progress columns
    assert (rows["sl-3"]["REJECTED"], rows["sl-3"]["LOSS"]) == (2, "")
    assert list(rows["sl-3"]) == list(rows["sl-1"])


@pytest.mark.parametrize("rejected, words", [
    ("sl-2", "at most 64"),
    ([{"uid": "sl-2", "reason": "x"}] * 65, "at most 64"),
    (["sl-2"], "object {uid, reason}"),
    ([{"uid": "sl-2"}], "rejected reason must be a string"),
    ([{"uid": "x" * 65, "reason": "r"}], "rejected uid is 65 characters long; the limit is 64"),
    ([{"uid": "sl-2", "reason": "r" * 201}], "the limit is 200"),
    ([{"uid": "sl-2", "reason": "é" * 150}], "300 bytes in UTF-8; the limit is 200"),
])
def test_a_bad_rejected_list_is_refused_and_nothing_is_recorded(swarm: Swarm, rejected,
                                                                 words: str) -> None:
    name = unique("rejections")
    service = swarm.service
    service.create_contract(name)
    service.checkin(name, "sl-1", 0, H, 1, 1)
    with pytest.raises(ServiceError) as refused:
        service.record_merge(name, 0, "sl-1", "cd" * 32, ["sl-1"], False, rejected)
    assert refused.value.status == 422 and words in refused.value.message
    assert service.contract_status(name)["ROUND"] == 0


@pytest.mark.parametrize("field, args", [
    ("contribution", ("sl-1", 0, "xyz", 1, 1)),
    ("contribution", ("sl-1", 0, "zz" * 32, 1, 1)),
    ("weight", ("sl-1", 0, H, 101, 1)),
    ("flags", ("sl-1", 0, H, 1, 4)),
    ("round", ("sl-1", -1, H, 1, 1)),
    ("min_peers", ("sl-1", 0, H, 1, 1, 257)),
    ("min_peers", ("sl-1", 0, H, 1, 1, True)),
])
def test_bad_check_ins_are_refused_with_the_field_named(swarm: Swarm, field: str,
                                                        args: tuple) -> None:
    name = unique("rounds")
    swarm.service.create_contract(name)
    with pytest.raises(ServiceError) as refused:
        swarm.service.checkin(name, *args)
    assert refused.value.status == 422 and field in refused.value.message


def test_the_round_long_poll_answers_on_change_and_is_bounded(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    first = service.sync_round(name, "current")
    started = time.monotonic()
    same = service.sync_round(name, "current", wait=0.5, seen=first["version"])
    assert 0.4 <= time.monotonic() - started < 5 and same["version"] == first["version"]
    timer = threading.Timer(0.3, lambda: service.checkin(name, "sl-4", 0, H, 1, 1))
    timer.start()
    started = time.monotonic()
    changed = service.sync_round(name, 0, wait=20, seen=first["version"])
    timer.join()
    assert time.monotonic() - started < 10
    assert [c["uid"] for c in changed["checkins"]] == ["sl-4"]
    with pytest.raises(ServiceError):
        service.sync_round(name, "soon")


def test_a_long_poll_sleeps_until_a_block_lands_and_wakes_at_once(
        swarm: Swarm, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    first = service.sync_round(name, "current")
    computed: list[tuple] = []
    original = service._round_status
    monkeypatch.setattr(service, "_round_status",
                        lambda *args: computed.append(args) or original(*args))
    service.sync_round(name, "current", wait=1.0, seen=first["version"])
    assert len(computed) <= 3  # once, plus once per block that other writers made meanwhile
    written: list[float] = []

    def write() -> None:
        service.checkin(name, "sl-3", 0, H, 1, 1)
        written.append(time.monotonic())

    timer = threading.Timer(0.3, write)
    timer.start()
    changed = service.sync_round(name, 0, wait=20, seen=first["version"])
    answered = time.monotonic()
    timer.join()
    assert [c["uid"] for c in changed["checkins"]] == ["sl-3"]
    assert answered - written[0] < 0.08  # woken by the write, not by a poll


def test_progress_reports_are_batched_into_perfdata(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    before = service.progress_reports.transactions
    threads = [threading.Thread(target=service.report_progress,
                                args=(name, f"sl-{i}", i == 1, 0.25 * i, 0.5, 10, i))
               for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert service.progress_reports.transactions - before == 1
    rows = {row["UID"]: row for row in service.perfdata(name)}
    assert rows["sl-1"]["ADMIN"] == "Y" and rows["sl-2"]["LOSS"] == 0.5
    assert rows["sl-2"]["COMPLETED_EPOCHS"] == 2


def test_a_failed_batch_write_reaches_every_caller() -> None:
    calls = []

    def write(group: object, entries: list) -> None:
        calls.append(list(entries))
        raise RuntimeError("chain said no")

    batcher = Batcher(write, window=0.2)
    errors: list[str] = []

    def submit(entry: int) -> None:
        try:
            batcher.submit("g", entry)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(calls) == 1 and sorted(calls[0]) == [0, 1, 2]
    assert errors == ["chain said no"] * 3


def test_a_batch_that_nobody_else_will_join_is_written_at_once() -> None:
    writes: list[list[str]] = []
    batcher = Batcher(lambda group, entries: writes.append(sorted(entries)), window=5.0,
                      complete=lambda group, entries: len(entries) >= 2)
    started = time.monotonic()
    threads = [threading.Thread(target=batcher.submit, args=("g", peer)) for peer in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert time.monotonic() - started < 2.5  # not the 5 s window
    assert writes == [["a", "b"]] and batcher.transactions == 1


def test_the_last_check_in_of_a_round_skips_the_window(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    threads = [threading.Thread(target=service.report_progress,
                                args=(name, f"sl-{i}", False, 0.5, 0.5, 10, 1)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    one = [(key_of("sl-1"), bytes.fromhex(H), 1, 1)]
    both = [*one, (key_of("sl-2"), bytes.fromhex(H), 1, 1)]
    assert not service._round_would_be_full((name, 0), one)
    assert service._round_would_be_full((name, 0), both)
    service.checkin(name, "sl-1", 0, H, 1, 1)
    assert service._round_would_be_full((name, 0), both[1:])  # sl-1 is on the chain now
    window, service.checkins.window = service.checkins.window, 5.0
    try:
        started = time.monotonic()
        service.checkin(name, "sl-2", 0, H, 1, 1)
        assert time.monotonic() - started < 2.5
    finally:
        service.checkins.window = window


def test_before_any_progress_a_batch_goes_once_min_peers_are_in(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    entry = (bytes.fromhex(H), 1, 1)
    one = [(key_of("sl-1"), *entry, 2)]
    both = [*one, (key_of("sl-2"), *entry, 2)]
    assert service.view.progress(key_of(name)) == []
    assert not service._round_would_be_full((name, 0), one)
    assert service._round_would_be_full((name, 0), both)
    # without minPeers (an older SL) only the window ends the batch
    assert not service._round_would_be_full((name, 0), [e[:4] for e in both])
    window, service.checkins.window = service.checkins.window, 5.0
    before = service.checkins.transactions
    try:
        started = time.monotonic()
        threads = [threading.Thread(target=service.checkin,
                                    args=(name, f"sl-{i}", 0, H, 1, 1, 2)) for i in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert time.monotonic() - started < 2.5  # not the 5 s window
    finally:
        service.checkins.window = window
    assert service.checkins.transactions - before == 1
    assert len(service.sync_round(name, 0)["checkins"]) == 2


def test_a_sync_round_reads_no_contract_state(swarm: Swarm, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """The view takes check-ins, merges and the contract's row from the events' contents."""
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    service.checkin(name, "sl-1", 0, H, 1, 1)
    service.record_merge(name, 0, "sl-1", H, ["sl-1"], False)
    service.sync_round(name, 1)  # round 1 cached (empty) before anyone checks in
    reads: list[str] = []
    read = service.ledger.read
    monkeypatch.setattr(service.ledger, "read",
                        lambda kind, function, *args: reads.append(function) or
                        read(kind, function, *args))
    service.checkin(name, "sl-1", 1, "01" * 32, 1, 1)
    service.checkin(name, "sl-2", 1, "02" * 32, 2, 1)
    service.checkin(name, "sl-1", 1, "03" * 32, 3, 1)  # a new check-in replaces the old one
    status = service.record_merge(name, 1, "sl-2", "04" * 32, ["sl-1", "sl-2"], True)
    assert reads == []
    assert [(c["uid"], c["contribution"], c["weight"]) for c in status["checkins"]] == [
        ("sl-1", "03" * 32, 3), ("sl-2", "02" * 32, 2)]
    assert status["merge"]["merged"] == "04" * 32
    assert status["merge"]["participants"] == ["sl-1", "sl-2"]
    assert status["state"] == "COMPLETED" and status["current_round"] == 2
    monkeypatch.setattr(service.ledger, "read", read)
    # and what the events built is what the contract holds
    key = key_of(name)
    held = service.ledger.read("trainings", "round_checkins", key, 1)
    assert [(bytes(c[0]), bytes(c[1]).hex(), c[2]) for c in held] == [
        (key_of("sl-1"), "03" * 32, 3), (key_of("sl-2"), "02" * 32, 2)]
    row = service.ledger.read("trainings", "training", key)
    assert service.view.trainings.rows[key] == dict(zip(
        ("name", "state", "round", "resets", "peers", "created_at", "updated_at"), row,
        strict=True))


def test_an_event_the_view_does_not_know_makes_it_read_the_training_again(swarm: Swarm) -> None:
    name = unique("rounds")
    service = swarm.service
    service.create_contract(name)
    service.checkin(name, "sl-1", 0, H, 1, 1)
    key = key_of(name)
    service.view.sync_round(key, 0)
    assert (key, 0) in service.view._checkins
    service.view.trainings.rows[key]["updated_at"] = -1  # stale, as if an event had been lost
    assert service.view._apply_training("Unknown", key, {"key": key}) is False
    assert (key, 0) not in service.view._checkins
    service.view._reload_training(key)
    assert service.view.trainings.rows[key]["updated_at"] > 0
