"""The plumbing every area of the SN service shares: the ServiceError that carries a refusal's
HTTP status and sentence, the checks of free text and the rendering of timestamps and state
codes, and ServiceBase, which holds the ledger and its cached view and writes transactions."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any

from swarmlearning.chain.ledger import ChainRejected, Ledger, key_of
from swarmlearning.sn.view import SwarmView
from swarmlearning.states import state_name

MAX_TEXT = 160


class ServiceError(Exception):
    """A refused request: HTTP status and reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def timestamp(ts: int) -> str:
    """A chain timestamp as local date and time, "-" for none (0)."""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def check_text(value: Any, field: str, *, allow_empty: bool = False,
               limit: int = MAX_TEXT) -> str:
    """`value` when it is a string of at most `limit` characters (and not empty unless
    `allow_empty`); else 422 naming `field`."""
    if not isinstance(value, str):
        raise ServiceError(422, f"{field} must be a string")
    if not value and not allow_empty:
        raise ServiceError(422, f"{field} is empty")
    if len(value) > limit:
        raise ServiceError(422, f"{field} is {len(value)} characters long; the limit is {limit}")
    return value


def shown(kind: type[enum.IntEnum], code: int) -> str:
    """The name the API shows for a state code of a stored row; "?" for a code that names no
    state the contract sets (NONE included)."""
    name = state_name(kind, code)
    return "?" if name == "NONE" else name


class ServiceBase:
    """The ledger, its cached view and the clock, with the lookups and the write that every
    area uses."""

    ledger: Ledger
    view: SwarmView
    clock: Callable[[], float]
    alive_window: float

    def __init__(self, ledger: Ledger, view: SwarmView, clock: Callable[[], float],
                 alive_window: float) -> None:
        self.ledger = ledger
        self.view = view
        self.clock = clock
        self.alive_window = alive_window

    def _now(self) -> int:
        return int(self.clock())

    def _write(self, kind: str, function: str, *args: Any) -> None:
        try:
            self.ledger.transact(kind, function, *args)
        except ChainRejected as exc:
            raise ServiceError(409, str(exc)) from None
        finally:
            self.view.sync()

    def _existing(self, table: str, name: str, noun: str) -> dict[str, Any]:
        """The cached row of a named object, or 404 naming the command that lists them."""
        self.view.sync()
        row = getattr(self.view, table).rows.get(key_of(name))
        if row is None:
            raise ServiceError(404, f"{noun} {name!r} does not exist (LIST {noun.upper()}S "
                                    f"shows the {noun}s)")
        return row

    def _new(self, table: str, name: str, noun: str, why: str = "") -> None:
        """409 when a named object already exists."""
        check_text(name, f"{noun} name")
        self.view.sync()
        if key_of(name) in getattr(self.view, table).rows:
            raise ServiceError(409, f"{noun} {name!r} already exists{why}")
