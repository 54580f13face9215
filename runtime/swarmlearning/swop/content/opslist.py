"""The OpsList of MAKE_SWARM_USER_CONTENT: `run_ops` checks every operation of a task's OpsList
(DOWNLOAD, EXTRACT), keeping each `Out` and relative Target inside the volume directory, then
applies them in order there; `volume_names` says which volumes a content task fills."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from swarmlearning.swop.content.common import DEFAULT_MAX_BYTES, ContentError, _within
from swarmlearning.swop.content.download import Verify, _classify, download
from swarmlearning.swop.content.extract import extract

MAX_OPS = 20
CONTENT_TYPES = ("BUILDCONTENT", "SWARMCONTENT")
OPERATIONS = ("DOWNLOAD", "EXTRACT")


@dataclass(frozen=True)
class _Op:
    index: int
    operation: str
    target: str
    out: PurePosixPath

    @property
    def where(self) -> str:
        return f"OpsList[{self.index}] {self.operation} {self.target!r}"


def _relative(value: object, what: str) -> PurePosixPath:
    """A path that must stay inside the volume; `.` is the volume root."""
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{what} must be a non-empty relative path, got {value!r}")
    if value.startswith("/"):
        raise ContentError(f"{what} {value!r} is absolute; it must be relative to the volume")
    if "\x00" in value:
        raise ContentError(f"{what} {value!r} contains a NUL character")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ContentError(f"{what} {value!r} contains '..' and could leave the volume")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _is_reference(target: str) -> bool:
    """A URI or an absolute path, as opposed to a path relative to the volume."""
    return target.startswith(("/", "file:")) or "://" in target


def _basename(uri: str) -> str:
    path = unquote(urlsplit(uri).path) if "://" in uri or uri.startswith("file:") else uri
    name = PurePosixPath(path).name
    if not name or name in (".", ".."):
        raise ContentError(f"cannot derive a file name from {uri!r}; give Options: [{{Out: ...}}]")
    return name


def _parse_op(index: int, raw: object) -> _Op:
    where = f"OpsList[{index}]"
    if not isinstance(raw, Mapping):
        raise ContentError(f"{where}: expected a mapping with Operation, Target and Options, "
                           f"got {type(raw).__name__}")
    unknown = sorted(str(key) for key in raw if key not in ("Operation", "Target", "Options"))
    if unknown:
        raise ContentError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = [key for key in ("Operation", "Target") if key not in raw]
    if missing:
        raise ContentError(f"{where}: missing {', '.join(missing)}")
    operation = str(raw["Operation"]).upper()
    target = raw["Target"]
    if operation not in OPERATIONS:
        raise ContentError(f"{where}: unknown Operation {raw['Operation']!r} "
                           f"(expected {' or '.join(OPERATIONS)})")
    if not isinstance(target, str) or not target.strip():
        raise ContentError(f"{where} {operation}: Target must be a non-empty string, "
                           f"got {target!r}")
    where = f"{where} {operation} {target!r}"
    options = raw.get("Options") or []
    if not isinstance(options, list):
        raise ContentError(f"{where}: Options must be a list, got {type(options).__name__}")
    out: object = None
    for option in options:
        if not isinstance(option, Mapping):
            raise ContentError(f"{where}: each option must be a mapping, got {option!r}")
        for key, value in option.items():
            if key != "Out":
                raise ContentError(f"{where}: unknown option {key!r} (only Out is supported)")
            if out is not None:
                raise ContentError(f"{where}: Out is given more than once")
            out = value
    try:
        if operation == "DOWNLOAD":
            _classify(target)
            path = _relative(out if out is not None else _basename(target), "Out")
            if path == PurePosixPath("."):
                raise ContentError("Out must name a file or directory inside the volume")
        else:
            if _is_reference(target):
                _classify(target)
            else:
                _relative(target, "Target")
            path = _relative(out if out is not None else ".", "Out")
    except ContentError as exc:
        raise ContentError(f"{where}: {exc}") from exc
    return _Op(index, operation, target, path)


def _inside(volume: Path, path: PurePosixPath, what: str) -> Path:
    host = volume.joinpath(*path.parts)
    if not _within(os.path.realpath(host), os.path.realpath(volume)):
        raise ContentError(f"{what} {str(path)!r} leaves the volume through a symlink")
    return host


def _run_op(op: _Op, volume: Path, timeout: float, max_bytes: int, verify: Verify) -> str:
    if op.operation == "DOWNLOAD":
        dest = _inside(volume, op.out, "Out")
        download(op.target, dest, timeout=timeout, max_bytes=max_bytes, verify=verify)
        size = "directory" if dest.is_dir() else f"{dest.stat().st_size} bytes"
        return f"-> {op.out} ({size})"
    out_dir = _inside(volume, op.out, "Out")
    if not _is_reference(op.target):
        archive = _inside(volume, _relative(op.target, "Target"), "Target")
        if not archive.is_file():
            raise ContentError(f"no archive {op.target!r} in the volume (DOWNLOAD it first)")
        entries = extract(archive, out_dir, max_bytes=max_bytes)
    elif _classify(op.target)[0] == "file":
        entries = extract(Path(_classify(op.target)[1]), out_dir, max_bytes=max_bytes)
    else:
        with tempfile.TemporaryDirectory(prefix="swop-content-") as tmp:
            archive = download(op.target, Path(tmp) / "archive", timeout=timeout,
                               max_bytes=max_bytes, verify=verify)
            entries = extract(archive, out_dir, max_bytes=max_bytes)
    return f"-> {op.out} ({len(entries)} entries)"


def run_ops(ops: list[dict], volume_dir: Path, *, log: Callable[[str], None],
            timeout: float = 60, max_bytes: int = DEFAULT_MAX_BYTES,
            verify: Verify = True) -> None:
    """Apply an OpsList in order inside `volume_dir` (created if missing), logging one line
    per operation. Every operation is checked before the first one runs; a failure raises
    ContentError naming the operation (`OpsList[2] EXTRACT 'pkg.tar.gz': ...`)."""
    if not isinstance(ops, list) or not 1 <= len(ops) <= MAX_OPS:
        count = len(ops) if isinstance(ops, list) else type(ops).__name__
        raise ContentError(f"OpsList must hold 1..{MAX_OPS} operations, got {count}")
    plan = [_parse_op(index, raw) for index, raw in enumerate(ops)]
    volume = Path(volume_dir)
    volume.mkdir(parents=True, exist_ok=True)
    for op in plan:
        try:
            summary = _run_op(op, volume, timeout, max_bytes, verify)
        except ContentError as exc:
            raise ContentError(f"{op.where}: {exc}") from exc
        except OSError as exc:
            raise ContentError(f"{op.where}: {exc}") from exc
        log(f"{op.where} {summary}")


def volume_names(outcome: str, content_type: str, node_count: int) -> list[str]:
    """The volumes a content task fills: BUILDCONTENT -> `[outcome]`; SWARMCONTENT -> one per
    SL node of the profile, `[f"{outcome}-{i}" for i in range(node_count)]`."""
    if not isinstance(outcome, str) or not outcome:
        raise ContentError(f"Outcome must be a non-empty string, got {outcome!r}")
    kind = str(content_type).upper()
    if kind == "BUILDCONTENT":
        return [outcome]
    if kind == "SWARMCONTENT":
        if isinstance(node_count, bool) or not isinstance(node_count, int) or node_count < 1:
            raise ContentError(f"SWARMCONTENT needs at least one SL node, got {node_count!r}")
        return [f"{outcome}-{index}" for index in range(node_count)]
    raise ContentError(f"unknown ContentType {content_type!r} "
                       f"(expected {' or '.join(CONTENT_TYPES)})")
