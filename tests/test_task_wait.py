"""WAIT FOR TASKRUNNER against a fake SN: failures surface at once with their evidence, a task
that is not moving is explained within 30 s, and Ctrl-C ends the wait only."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest

from swci.interpreter.output import StreamOutput
from swci.interpreter.taskwatch import TaskWatch
from swci.interpreter.waitview import LiveView, MarksView, wait_view

from .conftest import run

NOW = dt.datetime(2026, 11, 21, 12, 0, 0)


def stamp(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S")


def swop(uid: str, seconds_ago: float = 1, name: str = "") -> dict[str, Any]:
    return {"NodeType": "SWOP", "UUID": uid, "ContainerName": name or uid,
            "i-am-alive": stamp(seconds_ago)}


def peer(uid: str, state: str = "RUNNING", desc: str = "") -> dict[str, Any]:
    return {"SWOP_UID": uid, "NAME": "demo", "SWOP_PEER_STATUS": state,
            "SWOP_PEER_STATUS_DESC": desc}


def running(enrolled: int = 0, units: int | None = None, needed: int = 2) -> dict[str, Any]:
    return {"TASK": "t", "TASK_STATE": "RUNNING", "TASK_TYPE": "RUN_SWARM",
            "PEERS_NEEDED": needed, "ENROLLED_PEERS": enrolled,
            "ENROLLED_UNITS": enrolled if units is None else units, "COMPLETED_PEERS": 0}


@pytest.fixture
def network(interp, networks, monkeypatch):
    monkeypatch.setattr("swci.interpreter.taskwatch.wall_clock", lambda: NOW)
    run(interp, "CREATE CONTEXT lab WITH IP 127.0.0.1", "SWITCH CONTEXT lab")
    return networks["127.0.0.1:30304"]


def test_watch_is_silent_within_the_grace_period() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    assert watch.check(29.0, running(), [], []) == ([], None)


def test_watch_fails_when_no_swop_is_alive() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    notes, fatal = watch.check(31.0, running(), [], [swop("old", seconds_ago=600)])
    assert notes == [] and fatal is not None
    assert "no SWOP has enrolled after 30 s and no live SWOP" in fatal
    assert "START SWOP" in fatal


def test_watch_names_live_swops_that_do_not_enroll_once() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    notes, fatal = watch.check(31.0, running(), [], [swop("u1", name="swop1")])
    assert fatal is None
    assert notes == ["no SWOP has enrolled after 30 s; live SWOPs: swop1 (u1). A SWOP enrolls "
                     "only on its profile's taskrunner and only when it is not busy with "
                     "another task"]
    assert watch.check(40.0, running(), [], [swop("u1")]) == ([], None)


def test_watch_counts_missing_peers_and_idle_swops() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    nodes = [swop("u1"), swop("u2", name="swop2")]
    watch.check(1.0, running(enrolled=1, units=2, needed=3), [peer("u1")], nodes)
    notes, fatal = watch.check(32.0, running(enrolled=1, units=2, needed=3), [peer("u1")], nodes)
    assert fatal is None
    assert notes == ["1 more peer(s) needed: 2 of 3 enrolled; live SWOPs not enrolled: "
                     "swop2 (u2)"]
    # a new enrolment restarts the grace period
    notes, _ = watch.check(33.0, running(enrolled=2, units=2, needed=3),
                           [peer("u1"), peer("u2")], nodes)
    assert notes == []
    notes, _ = watch.check(64.0, running(enrolled=2, units=2, needed=3),
                           [peer("u1"), peer("u2")], nodes)
    assert notes == ["1 more peer(s) needed: 2 of 3 enrolled; every live SWOP is already "
                     "enrolled; start more SWOPs or ASSIGN TASK ... TARGET one"]


def test_watch_fails_when_an_enrolled_swop_goes_quiet() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    notes, fatal = watch.check(5.0, running(enrolled=1), [peer("u1")],
                               [swop("u1", seconds_ago=90)])
    assert fatal is not None and fatal.startswith("SWOP u1 (demo) stopped reporting")
    assert stamp(90) in fatal
    _, fatal = watch.check(5.0, running(enrolled=1), [peer("u1")], [])
    assert fatal is not None and "it left the swarm" in fatal
    # a SWOP that finished its part may go away
    assert watch.check(5.0, running(enrolled=1), [peer("u1", "COMPLETE")], [])[1] is None


def test_wait_fails_fast_with_the_failed_peer_and_its_log(interp, network, clock) -> None:
    network.statuses = [running(enrolled=1), {
        "TASK_STATE": "ERROR", "TASK_TYPE": "RUN_SWARM",
        "FAILED_PEERS": ["u1 : ML user1 (node 0) exited with code 3"],
        "FAILURE_DETAILS": {"u1": "Traceback (most recent call last):\nValueError: bad"}}]
    network.list_nodes = lambda: [swop("u1")]
    network.taskrunner_peers = lambda name: [peer("u1")]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert lines[-6:] == [
        "STATE : ERROR", lines[-5], "FAILED PEER : u1 : ML user1 (node 0) exited with code 3",
        "    | Traceback (most recent call last):", "    | ValueError: bad",
        "ERROR : Task has failed, check TASKRUNNER PEER STATUS for Error description"]
    assert clock.slept == [2.0]


def test_wait_stops_early_when_nothing_can_run_the_task(interp, network, clock) -> None:
    network.statuses = [running()]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert lines[-1].startswith("ERROR : no SWOP has enrolled after 30 s")
    assert 30 <= sum(clock.slept) <= 34


def test_wait_notes_why_it_keeps_waiting(interp, network, clock) -> None:
    network.statuses = [running()] * 20 + [{"TASK_STATE": "COMPLETE"}]
    network.list_nodes = lambda: [swop("u1", name="swop1")]
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    notes = [line for line in lines if line.startswith("NOTE : ")]
    assert len(notes) == 1 and "live SWOPs: swop1 (u1)" in notes[0]
    assert "STATE : COMPLETE" in lines


def test_wait_on_an_idle_taskrunner_says_what_to_do(interp, network) -> None:
    network.statuses = [{"TASK_STATE": "IDLE"}]
    assert run(interp, "WAIT FOR TASKRUNNER tr") == [
        "ERROR : Taskrunner tr has no task (IDLE); ASSIGN TASK <task> TO tr WITH <n> PEERS "
        "first"]


def test_ctrl_c_ends_the_wait_not_the_task(interp, network, clock) -> None:
    network.statuses = [running(enrolled=1)]
    network.list_nodes = lambda: [swop("u1")]
    calls = []

    def interrupted(name: str) -> list[dict[str, Any]]:
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return [peer("u1")]

    network.taskrunner_peers = interrupted
    lines = run(interp, "WAIT FOR TASKRUNNER tr")
    assert lines[-1] == ("ERROR : Stopped waiting (Ctrl-C); task t goes on. GET TASKRUNNER "
                         "STATUS tr shows it")
    assert not any(name == "reset_taskrunner" for name, _ in network.calls)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_live_panel_and_a_script_gets_marks() -> None:
    screen = Terminal()
    view = wait_view(StreamOutput(screen), "tr")
    assert isinstance(view, LiveView)
    status = {**running(enrolled=2, units=3, needed=3), "COMPLETED_PEERS": 1,
              "PEER_TYPE": "SL"}
    view.update(status, [peer("u1", "COMPLETE", "2 SL/ML pair(s) finished"),
                         peer("u2", "RUNNING", "training: 1 of 1 ML programs running")])
    view.note("something to know")
    view.close()
    shown = screen.getvalue()
    assert "1/3 SL peers complete" in shown
    assert "training: 1 of 1 ML programs running" in shown and "COMPLETE" in shown
    assert "NOTE : something to know" in shown
    piped = io.StringIO()
    out = StreamOutput(piped)
    marks = wait_view(out, "tr")
    assert isinstance(marks, MarksView)
    marks.update(status, [])
    marks.update(status, [])
    out.line("TASKRUNNER FINISHED")
    assert piped.getvalue() == "    ##\n    TASKRUNNER FINISHED\n"
    # in a script, each change of a peer's status or progress gets one line
    piped = io.StringIO()
    marks = wait_view(StreamOutput(piped), "tr")
    for state, desc in [("RUNNING", "building"), ("RUNNING", "building"),
                        ("COMPLETE", "built")]:
        marks.update(status, [peer("u1", state, desc)])
    assert piped.getvalue() == ("    PEER demo u1 : RUNNING : building\n    ##\n"
                                "    PEER demo u1 : COMPLETE : built\n    #")


def test_watch_knows_where_swops_listen_and_trusts_the_sn_clock() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    status = {**running(), "TASKRUNNER": "tr"}
    elsewhere = {**swop("u9"), "TASKRUNNER": "other-tr", "SECONDS_SINCE_ALIVE": 2}
    _, fatal = watch.check(31.0, status, [], [elsewhere])
    assert fatal is not None and "no live SWOP listens on tr" in fatal
    assert "the live SWOPs listen on other-tr" in fatal
    # an hour of clock skew between SWCI and the SN does not matter when the SN says the age
    skewed = {**swop("u1", seconds_ago=3600), "TASKRUNNER": "tr", "SECONDS_SINCE_ALIVE": 3}
    assert watch.check(5.0, {**running(enrolled=1), "TASKRUNNER": "tr"}, [peer("u1")],
                       [skewed]) == ([], None)
    stale = {**swop("u1"), "TASKRUNNER": "tr", "SECONDS_SINCE_ALIVE": 400}
    _, fatal = watch.check(6.0, {**running(enrolled=1), "TASKRUNNER": "tr"}, [peer("u1")],
                           [stale])
    assert fatal is not None and "stopped reporting" in fatal


def test_watch_counts_swops_for_all_peers() -> None:
    watch = TaskWatch(started=0.0, now=lambda: NOW)
    status = {**running(enrolled=1, units=4), "PEERS_NEEDED": "ALL", "SWOPS_NEEDED": 2,
              "TASKRUNNER": "tr"}
    nodes = [{**swop("u1"), "TASKRUNNER": "tr"}, {**swop("u2", name="s2"), "TASKRUNNER": "tr"}]
    notes, fatal = watch.check(31.0, status, [peer("u1")], nodes)
    assert fatal is None
    assert notes == ["1 more peer(s) needed: 1 of 2 enrolled; live SWOPs not enrolled: s2 (u2)"]
