"""SIGINT and SIGTERM for every long-running process of the swarm, handled in one place.

Each daemon (the SN, the SL, the SWOP, the SWCI web API) and `swci demo` runs its whole life
inside `capture_signals(on_signal)`, as uvicorn's `Server.capture_signals()` does for one server:
while inside, either signal calls `on_signal(signum)` (a daemon sets its stop event there, the
demo raises KeyboardInterrupt), and on the way out the handlers that were there before are put
back. Signal handlers can only be set in the main thread; elsewhere it does nothing, and whoever
runs a daemon in a thread stops it through the daemon's own stop event.

Unlike uvicorn, a captured signal is not raised again after the exit: every daemon turns SIGINT
and SIGTERM into a clean stop with an exit code of its own, which a re-raised SIGTERM would
replace by death by signal. The signals that arrived are yielded, for a caller that needs to
know (a command may have taken Ctrl-C as "stop this command").

uvicorn's own per-server capture is switched off (swarmlearning.serve); its servers run under
the daemon's.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

HANDLED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


def in_main_thread() -> bool:
    """Whether signal handlers can be set from here (only the main thread may)."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def capture_signals(on_signal: Callable[[int], object]) -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM call `on_signal(signum)` in the main thread (an
    exception it raises, such as KeyboardInterrupt, comes out where the main thread was); on
    exit the previous handlers are restored. Yields the signals received so far, in order. Off
    the main thread: nothing is installed and the list stays empty."""
    received: list[int] = []
    if not in_main_thread():
        yield received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        on_signal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in HANDLED_SIGNALS}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            # None: a handler not set from Python; the default action is the closest to it
            signal.signal(sig, old if old is not None else signal.SIG_DFL)


def stop_on_signal(stop: threading.Event) -> contextlib.AbstractContextManager[list[int]]:
    """`capture_signals` that sets `stop` on SIGINT or SIGTERM: a daemon's usual lifecycle."""
    return capture_signals(lambda signum: stop.set())
