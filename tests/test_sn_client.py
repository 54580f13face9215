"""How an SL or a SWOP waits out its SN: unreachable or 503 (the chain restarting) is retried
within a bound, a refusal is not, and a stopping node gives up at once."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx
import pytest

from swarmlearning.sn.client import SNClient, SNError


def client(answers: list[Callable[[httpx.Request], httpx.Response]],
           retry_seconds: float = 60.0) -> SNClient:
    """An SNClient whose transport answers with `answers` in turn (the last one repeats), on
    a clock of its own that moves only when the client sleeps."""
    now = [0.0]
    sn = SNClient("127.0.0.1", 1, ssl.create_default_context(), retry_seconds=retry_seconds,
                  clock=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] +
                                                                             seconds))
    calls = iter(range(10**6))

    def handler(request: httpx.Request) -> httpx.Response:
        return answers[min(next(calls), len(answers) - 1)](request)

    sn.http = httpx.Client(base_url=sn.base, transport=httpx.MockTransport(handler))
    sn.calls = calls
    return sn


def chain_down(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, json={"detail": "the chain is unreachable from this SN"})


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"NODE_UID": "sn-1"})


def test_a_restarting_chain_or_sn_is_waited_out() -> None:
    sn = client([chain_down, refused, chain_down, ok])
    assert sn.version() == {"NODE_UID": "sn-1"}
    assert next(sn.calls) == 4


def test_the_wait_is_bounded_and_says_why() -> None:
    sn = client([chain_down], retry_seconds=5)
    with pytest.raises(SNError, match="unavailable: the chain is unreachable") as caught:
        sn.version()
    assert caught.value.status == 503
    assert sn.clock() >= 5
    sn = client([refused], retry_seconds=5)
    with pytest.raises(SNError, match="unreachable: Connection refused") as caught:
        sn.version()
    assert caught.value.status == 0


def test_a_refusal_is_not_retried() -> None:
    sn = client([lambda request: httpx.Response(409, json={"detail": "round moved on"}), ok])
    with pytest.raises(SNError, match="round moved on") as caught:
        sn.version()
    assert caught.value.status == 409 and next(sn.calls) == 1


def test_a_stopping_node_gives_up_within_its_stop_deadline() -> None:
    sn = client([refused])
    sn.stop_retrying_after(3)
    with pytest.raises(SNError):
        sn.version()
    assert 3 <= sn.clock() < 4
    with pytest.raises(SNError):  # the deadline is shared: the next call gives up at once
        sn.version()
    assert sn.clock() < 4.5
