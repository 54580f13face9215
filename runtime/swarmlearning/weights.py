"""Model weights on the wire and on disk: safetensors bytes, addressed by their SHA-256.

Nothing here unpickles: safetensors holds only a JSON header and raw tensor bytes. The format
(https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
header naming each tensor's dtype, shape and byte range, then the tensors' bytes, back to back.

Both directions are written here rather than through the safetensors package, because a sync
round moves every model several times: `to_bytes` copies each tensor once into one buffer, and
`from_bytes` copies nothing (its arrays are views of the buffer it was given). The output is
plain safetensors that the safetensors package reads, and its blobs are read here too.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping

import numpy as np

Weights = dict[str, np.ndarray]
Buffer = bytes | bytearray | memoryview

MAX_HEADER = 100 << 20  # the safetensors package's own limit on the JSON header
_LENGTH = struct.Struct("<Q")
_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype("<u1"), "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}


class WeightsError(ValueError):
    """Bytes that are not a usable safetensors model."""


LARGE = 1 << 20


def new_buffer(size: int) -> bytearray | memoryview:
    """A writable buffer of `size` bytes to fill (a received blob, a serialized model); its
    initial contents are undefined. Large ones come from numpy, which asks the kernel for huge
    pages: filling fresh memory costs about half as much as a bytearray's page by page."""
    if size < LARGE:
        return bytearray(size)
    return memoryview(np.empty(size, dtype=np.uint8))


def digest(data: Buffer) -> str:
    """The content address of a blob: lower-case hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def to_bytes(weights: Mapping[str, np.ndarray]) -> bytearray | memoryview:
    """Serialize named arrays as safetensors: one buffer, each tensor copied into it once.
    Tensors are laid out largest item size first, then by name, so every tensor is aligned."""
    if not weights:
        raise WeightsError("a model needs at least one tensor")
    arrays = {}
    for name, value in weights.items():
        array = np.asarray(value)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _CODES:
            raise WeightsError(f"tensor {name!r}: dtype {array.dtype} cannot be stored")
        arrays[str(name)] = array.astype(dtype, copy=False)
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header: dict[str, object] = {}
    offset = 0
    for name in order:
        array = arrays[name]
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + _LENGTH.size) % 8)  # tensors start 8-byte aligned
    start = _LENGTH.size + len(text)
    out = new_buffer(start + offset)  # every byte of it is written below
    _LENGTH.pack_into(out, 0, len(text))
    out[_LENGTH.size:start] = text
    for name in order:
        array = arrays[name]
        begin, end = header[name]["data_offsets"]  # type: ignore[index]
        if end > begin:
            target = np.frombuffer(out, dtype=array.dtype, count=array.size,
                                   offset=start + begin)
            target.reshape(array.shape)[...] = array
    return out


def from_bytes(data: Buffer) -> Weights:
    """Parse safetensors bytes without copying: the arrays are views of `data` (read-only
    when `data` is `bytes`). A malformed blob raises WeightsError, never anything else."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    if len(view) < _LENGTH.size:
        raise WeightsError("not a safetensors blob: shorter than its 8-byte header length")
    (length,) = _LENGTH.unpack_from(view, 0)
    start = _LENGTH.size + length
    if length > MAX_HEADER or start > len(view):
        raise WeightsError(f"not a safetensors blob: a {length} byte header in a "
                           f"{len(view)} byte blob")
    try:
        header = json.loads(bytes(view[_LENGTH.size:start]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"not a safetensors blob: the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsError("not a safetensors blob: the header is not a JSON object")
    header.pop("__metadata__", None)
    if not header:
        raise WeightsError("the blob holds no tensors")
    size = len(view) - start
    spans = []
    weights: Weights = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(name, entry, size)
        spans.append((begin, end, name))
        count = math.prod(shape)
        weights[name] = np.frombuffer(view, dtype=dtype, count=count,
                                      offset=start + begin).reshape(shape)
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise WeightsError(f"not a safetensors blob: tensor {name!r} starts at byte {begin}"
                               f", expected {position} (overlapping or missing bytes)")
        position = end
    if position != size:
        raise WeightsError(f"not a safetensors blob: {size - position} byte(s) after the last "
                           "tensor")
    return weights


def _entry(name: str, entry: object, size: int) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict):
        raise WeightsError(f"not a safetensors blob: tensor {name!r} is not described by an "
                           "object")
    dtype = _DTYPES.get(entry.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise WeightsError(f"tensor {name!r}: unsupported dtype {entry.get('dtype')!r}")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    if not isinstance(shape, list) or not all(_count(n) for n in shape):
        raise WeightsError(f"tensor {name!r}: the shape must be a list of whole numbers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_count(n) for n in offsets):
        raise WeightsError(f"tensor {name!r}: data_offsets must be two whole numbers")
    begin, end = offsets
    if not begin <= end <= size:
        raise WeightsError(f"tensor {name!r}: bytes {begin}..{end} are outside the {size} "
                           "byte data")
    if math.prod(shape) * dtype.itemsize != end - begin:
        raise WeightsError(f"tensor {name!r}: shape {shape} of {entry['dtype']} needs "
                           f"{math.prod(shape) * dtype.itemsize} bytes, the blob gives "
                           f"{end - begin}")
    return dtype, tuple(shape), begin, end


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
