"""The ML channel of a real SL process (with a real SN behind it) against malformed and
oversized requests: random headers (hypothesis), fields far over their limits, a header nested
100,000 deep, frames over the header and blob limits. Every request gets an error answer that
names the field and its limit without echoing a long value; the SL never logs a traceback or an
internal error, and keeps serving."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarmlearning.ml.channel import PROTOCOL_VERSION, recv_frame, send_frame
from tests.swarm_processes import SL
from tests.training_swarm import Swarm, swarm_fixture

swarm = swarm_fixture("channel")
LIMIT = 1 << 20  # the SL's SL_MAX_BLOB_BYTES here
NO_CONTRACT = "no-such-contract-for-fuzzing"


@pytest.fixture(scope="module")
def sl(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SL]:
    root = tmp_path_factory.mktemp("channel-sl")
    node = SL("fuzzed", swarm.orgs["a"], swarm.sns[0], root / "data", root / "sl.log",
              env={"SL_MAX_BLOB_BYTES": str(LIMIT)})
    node.start()
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


def ask(sl: SL, header: Any, payload: bytes = b"", raw: bytes | None = None) -> dict[str, Any]:
    """One request on a fresh connection, and the SL's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(20)
        conn.connect(str(sl.channel))
        if raw is not None:
            conn.sendall(raw)
        elif isinstance(header, dict):
            send_frame(conn, header, payload)
        else:
            head = json.dumps(header).encode()
            conn.sendall(struct.pack(">IQ", len(head), len(payload)) + head + payload)
        answer, _ = recv_frame(conn)
        return answer


def opening(**params: Any) -> dict[str, Any]:
    return {"type": "open", "version": PROTOCOL_VERSION,
            "params": {"trainingContract": NO_CONTRACT, "minPeers": 1, **params}}


def assert_healthy(sl: SL) -> None:
    assert sl.process is not None and sl.process.poll() is None, sl.log()[-3000:]
    log = sl.log()
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
                    | st.text(max_size=50),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
HEADERS = st.fixed_dictionaries(
    {"type": st.sampled_from(["open", "sync", "progress", "close", "bogus"]) | st.text(),
     "version": st.just(PROTOCOL_VERSION) | JSON},
    optional={"params": st.fixed_dictionaries(
        {"trainingContract": st.just(NO_CONTRACT)},
        optional={"minPeers": JSON, "mergeMethod": JSON, "nodeWeightage": JSON,
                  "checkinModelOnTrainEnd": JSON, "totalEpochs": JSON}),
        "kind": JSON, "mode": JSON, "loss": JSON, "metric": JSON, "completed_epochs": JSON,
        "total_epochs": JSON})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=HEADERS, payload=st.binary(max_size=64))
def test_random_requests_get_a_reasoned_error(sl: SL, header: dict[str, Any],
                                              payload: bytes) -> None:
    answer = ask(sl, header, payload)
    assert answer["type"] == "error", answer
    assert answer["message"] and "internal error" not in answer["message"], answer
    assert len(answer["message"]) < 400, answer


@pytest.mark.parametrize("params, words", [
    ({"trainingContract": "c" * 5000}, "at most 160 characters; got 5000"),
    ({"mergeMethod": "m" * 5000}, "got 5000 characters (the limit is 32)"),
    ({"checkinModelOnTrainEnd": "x" * 5000}, "got 5000 characters (the limit is 32)"),
    ({"minPeers": [0] * 100_000}, "minPeers must be a whole number from 1 to 256; got [0, 0"),
    ({"totalEpochs": 10**100}, "totalEpochs must be a whole number from 0 to 1000000000"),
    ({"nodeWeightage": "w" * 5000}, "nodeWeightage must be a whole number from 1 to 100"),
])
def test_oversized_open_fields_are_refused_with_the_limit_named(sl: SL, params: dict[str, Any],
                                                                words: str) -> None:
    answer = ask(sl, opening(**params))
    assert answer["type"] == "error" and words in answer["message"], answer
    assert len(answer["message"]) < 300, answer


def test_frames_over_the_limits_and_deep_headers_are_refused(sl: SL) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    answer = ask(sl, None, raw=struct.pack(">IQ", len(deep), 0) + deep)
    assert answer["type"] == "error" and "deeper than 64 levels" in answer["message"], answer
    huge = struct.pack(">IQ", (1 << 20) + 1, 0)
    answer = ask(sl, None, raw=huge)
    assert "header too large" in answer["message"] and "1048576 B" in answer["message"]
    header = json.dumps({"type": "sync", "version": PROTOCOL_VERSION}).encode()
    answer = ask(sl, None, raw=struct.pack(">IQ", len(header), LIMIT + 1) + header)
    assert f"the limit is {LIMIT} B" in answer["message"], answer
    assert "SL_MAX_BLOB_BYTES" in answer["message"], answer
    digits = b'{"type": "open", "version": %d, "params": {"totalEpochs": 1%s}}' % (
        PROTOCOL_VERSION, b"0" * 5000)
    answer = ask(sl, None, raw=struct.pack(">IQ", len(digits), 0) + digits)
    assert "not JSON" in answer["message"] and "4300 digits" in answer["message"], answer
    answer = ask(sl, ["not", "an", "object"])
    assert "not a JSON object with a type" in answer["message"], answer
    assert_healthy(sl)


def test_the_sl_survives_the_fuzzing(sl: SL, tmp_path: Path) -> None:
    """Last in the module: after everything above, still up, with no traceback in its log."""
    answer = ask(sl, opening())
    assert answer["type"] == "error" and NO_CONTRACT in answer["message"], answer
    assert_healthy(sl)
