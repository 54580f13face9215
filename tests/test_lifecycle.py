"""swarmlearning.lifecycle: SIGINT and SIGTERM handled in one place, uvicorn's way. Inside
`capture_signals` a signal reaches the callback (or sets the stop event); on the way out the
handlers that were there before are back, also after an exception; off the main thread it
installs nothing. serve_all's uvicorn servers install no handlers of their own."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from swarmlearning.identity.pki import generate_pki
from swarmlearning.identity.tls import Identity, server_context
from swarmlearning.lifecycle import HANDLED_SIGNALS, capture_signals, stop_on_signal
from swarmlearning.serve import Listener, _QuietServer, serve_all
from tests.swarm_processes import free_port


def _previous(signum: int, frame: FrameType | None) -> None:
    raise AssertionError(f"the previous handler ran for signal {signum}")


@pytest.fixture
def previous() -> Iterator[dict[int, object]]:
    """A known handler of this test's own for SIGINT and SIGTERM, and pytest's back after."""
    saved = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _previous)
    yield {sig: _previous for sig in HANDLED_SIGNALS}
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_handlers_are_installed_inside_and_the_previous_ones_restored_after(
        previous: dict[int, object]) -> None:
    with capture_signals(lambda signum: None) as received:
        inside = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
    assert all(handler is not _previous and callable(handler) for handler in inside.values())
    assert received == []
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


@pytest.mark.parametrize("sig", HANDLED_SIGNALS, ids=lambda s: s.name)
def test_a_signal_calls_the_callback_and_is_recorded(previous: dict[int, object],
                                                     sig: signal.Signals) -> None:
    calls: list[int] = []
    with capture_signals(calls.append) as received:
        signal.raise_signal(sig)
    assert calls == [sig] and received == [sig]
    assert signal.getsignal(sig) is _previous


def test_a_signal_sets_the_stop_event(previous: dict[int, object]) -> None:
    stop = threading.Event()
    with stop_on_signal(stop) as received:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set()
        signal.raise_signal(signal.SIGINT)  # a second one: still just a stop
    assert received == [signal.SIGTERM, signal.SIGINT]
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


def test_an_exception_from_the_callback_comes_out_and_the_handlers_are_restored(
        previous: dict[int, object]) -> None:
    def interrupt(signum: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), capture_signals(interrupt):
        signal.raise_signal(signal.SIGINT)
        raise AssertionError("not reached: the handler raised")  # pragma: no cover
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


def test_nested_captures_restore_the_outer_one(previous: dict[int, object]) -> None:
    outer_calls: list[int] = []
    inner_calls: list[int] = []
    with capture_signals(outer_calls.append):
        outer = signal.getsignal(signal.SIGTERM)
        with capture_signals(inner_calls.append):
            signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is outer
        signal.raise_signal(signal.SIGTERM)
    assert (outer_calls, inner_calls) == ([signal.SIGTERM], [signal.SIGTERM])
    assert signal.getsignal(signal.SIGTERM) is _previous


def test_off_the_main_thread_it_does_nothing(previous: dict[int, object]) -> None:
    seen: dict[str, object] = {}

    def body() -> None:
        try:
            with capture_signals(lambda signum: None) as received:
                seen["inside"] = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
                seen["received"] = received
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            seen["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert "error" not in seen, seen.get("error")
    assert seen["inside"] == previous and seen["received"] == []
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


def test_uvicorns_own_capture_is_neutralised(previous: dict[int, object]) -> None:
    server = _QuietServer.__new__(_QuietServer)  # capture_signals needs no configuration
    with server.capture_signals():
        assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


def test_serve_all_after_a_stop_serves_nothing() -> None:
    """A stop that came during start-up (the event already set): not even a socket is bound
    (this address could not be), and on_ready does not run."""
    stop = threading.Event()
    stop.set()
    ready: list[bool] = []
    serve_all([Listener(app=None, host="192.0.2.1", port=1, label="nothing")],
              tls=None,  # type: ignore[arg-type]
              on_ready=lambda: ready.append(True), stop=stop)
    assert ready == []


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that is never called: nothing connects."""


@pytest.mark.parametrize("owner", ["daemon", "serve_all"])
def test_uvicorn_serves_under_the_lifecycle_until_sigterm(tmp_path: Path, owner: str,
                                                          previous: dict[int, object]) -> None:
    """A real uvicorn server behind TLS: while it serves, the lifecycle's handler is the one in
    place (uvicorn's is not); SIGTERM stops it, serve_all returns, and the previous handlers
    are back. `daemon`: the caller's capture sets the stop event it passed; `serve_all`: no
    event given, serve_all captures the signals itself."""
    pki = generate_pki(tmp_path / "pki", "org", 1)
    tls = server_context(Identity(cert=pki.cert("sn"), key=pki.key("sn"), capath=pki.capath))
    seen: dict[str, object] = {}

    def ready() -> None:  # in a worker thread, while the server listens
        seen["handlers"] = {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS}
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()

    listeners = [Listener(_app, "127.0.0.1", free_port(), "test server")]
    stop = threading.Event()
    if owner == "daemon":
        with stop_on_signal(stop) as received:
            ours = signal.getsignal(signal.SIGTERM)
            serve_all(listeners, tls, on_ready=ready, stop=stop)
        assert stop.is_set() and received == [signal.SIGTERM]
        assert seen["handlers"] == {sig: ours for sig in HANDLED_SIGNALS}
    else:
        serve_all(listeners, tls, on_ready=ready)
        handlers = seen["handlers"]
        assert isinstance(handlers, dict)
        assert all(h is not _previous and getattr(h, "__module__", "") ==
                   "swarmlearning.lifecycle" for h in handlers.values()), handlers
    assert {sig: signal.getsignal(sig) for sig in HANDLED_SIGNALS} == previous


def test_an_sl_waiting_for_its_sn_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    """The SN is down, so the SL retries it (60 s by default); SIGTERM ends that wait at once,
    as a clean stop."""
    import subprocess
    import sys
    import time

    from tests.test_golden import closed_port

    pki = generate_pki(tmp_path / "pki", "org", 1)
    command = [sys.executable, "-m", "swarmlearning.sl", "--host-ip", "127.0.0.1",
               "--sn-ip", "127.0.0.1", "--sn-api-port", str(closed_port()),
               "--sl-fs-port", str(free_port()), "--cert", str(pki.cert("sl")),
               "--key", str(pki.key("sl")), "--capath", str(pki.capath),
               "--data-dir", str(tmp_path / "sl")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        time.sleep(3)  # well into its retries
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, output
    assert "Stopped while reaching the SN" in output and "SL stopped" in output, output
    assert took < 5, f"{took:.1f} s after SIGTERM"
