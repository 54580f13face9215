"""The safetensors codec of swarmlearning.weights: it reads what the safetensors package writes
and the reverse, copies nothing when reading, and refuses every malformed blob with a
WeightsError."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load, save

from swarmlearning.weights import WeightsError, digest, from_bytes, to_bytes

DTYPES = [np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64, np.uint8,
          np.uint16, np.uint32, np.uint64, np.bool_]


def sample() -> dict[str, np.ndarray]:
    return {"dense.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
            "dense.bias": np.array([0.5, -1.5, 2.0, 7.0], dtype=np.float64),
            "step": np.array(3, dtype=np.int64),
            "mask": np.array([True, False, True]),
            "empty": np.zeros((0, 5), dtype=np.float16),
            "big_endian": np.arange(4, dtype=">i4"),
            "transposed": np.arange(6, dtype=np.float32).reshape(2, 3).T}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name].shape == b[name].shape, name
        assert np.array_equal(a[name], b[name]), name


def test_safetensors_reads_what_we_write() -> None:
    same(load(bytes(to_bytes(sample()))), sample())


def test_we_read_what_safetensors_writes() -> None:
    weights = {name: np.require(value, dtype=value.dtype.newbyteorder("<"), requirements="C")
               for name, value in sample().items()}
    same(from_bytes(save(weights)), sample())


def test_reading_copies_nothing() -> None:
    blob = to_bytes({"w": np.ones(1000, dtype=np.float32)})
    weights = from_bytes(blob)
    assert np.shares_memory(weights["w"], np.frombuffer(blob, dtype=np.uint8))
    assert weights["w"].flags.writeable  # a bytearray gives writable views
    assert not from_bytes(bytes(blob))["w"].flags.writeable


def test_writing_is_deterministic_and_aligned() -> None:
    first, second = to_bytes(sample()), to_bytes(dict(reversed(sample().items())))
    assert digest(first) == digest(second)
    (length,) = struct.unpack_from("<Q", first)
    assert (8 + length) % 8 == 0
    header = json.loads(first[8:8 + length])
    sizes = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2}
    for entry in header.values():
        assert entry["data_offsets"][0] % sizes.get(entry["dtype"], 1) == 0


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.tuples(st.sampled_from(DTYPES),
                                 st.lists(st.integers(0, 4), max_size=3)),
                       min_size=1, max_size=5))
def test_round_trip_any_model(spec: dict) -> None:
    rng = np.random.default_rng(0)
    weights = {name: (rng.random(shape) * 100).astype(dtype) for name, (dtype, shape)
               in spec.items()}
    same(from_bytes(to_bytes(weights)), weights)
    same(load(bytes(to_bytes(weights))), weights)


def blob_with(header: object, data: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize(("blob", "reason"), [
    (b"", "shorter than its 8-byte header length"),
    (struct.pack("<Q", 1 << 40), "header in a 8 byte blob"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "not JSON"),
    (blob_with([1, 2]), "not a JSON object"),
    (blob_with({}), "holds no tensors"),
    (blob_with({"__metadata__": {"a": "b"}}), "holds no tensors"),
    (blob_with({"w": 5}, b"1234"), "not described by an object"),
    (blob_with({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"12"),
     "unsupported dtype"),
    (blob_with({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"1234"),
     "shape must be a list of whole numbers"),
    (blob_with({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"1234"),
     "data_offsets must be two whole numbers"),
    (blob_with({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"1234"),
     "outside the 4 byte data"),
    (blob_with({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"1234"),
     "needs 8 bytes"),
    (blob_with({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"12345"),
     "after the last tensor"),
    (blob_with({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"1234"),
     "overlapping or missing bytes"),
])
def test_malformed_blobs_are_refused_with_the_reason(blob: bytes, reason: str) -> None:
    with pytest.raises(WeightsError, match=reason):
        from_bytes(blob)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_weights_or_a_weights_error(data: bytes) -> None:
    good = to_bytes({"w": np.ones(3, dtype=np.float32)})
    for blob in (data, good[:8] + data, bytes(good[:len(good) // 2]) + data):
        try:
            from_bytes(blob)
        except WeightsError:
            pass


def test_unstorable_dtypes_are_refused() -> None:
    with pytest.raises(WeightsError, match="cannot be stored"):
        to_bytes({"c": np.zeros(2, dtype=np.complex64)})
    with pytest.raises(WeightsError, match="at least one tensor"):
        to_bytes({})
