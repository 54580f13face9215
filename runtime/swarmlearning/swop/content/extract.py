"""EXTRACT of MAKE_SWARM_USER_CONTENT: unpack a tar (plain, gz, bz2, xz) or zip archive,
recognised by its content, into a destination directory, after checking every entry: nothing
may be written or point outside the destination (absolute names, `..`, links out, entries below
an in-archive symlink, writes through an existing symlink), no device, fifo or socket, and no
more file content than the size limit; tar extraction also runs under tarfile's "data" filter."""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from swarmlearning.swop.content.common import _CHUNK, DEFAULT_MAX_BYTES, ContentError, _within

_MAX_LINK_TEXT = 4096
_MAX_LINK_HOPS = 40


@dataclass
class _Entry:
    name: str              # as stored in the archive
    path: PurePosixPath    # normalised, relative to the destination
    kind: str              # file, dir, symlink, hardlink
    size: int
    link: str
    member: tarfile.TarInfo | zipfile.ZipInfo


def _entry_path(name: str, what: str = "archive entry") -> PurePosixPath | None:
    """The normalised relative path of an entry name; None for the root itself (`./`)."""
    if "\x00" in name:
        raise ContentError(f"{what} {name!r} contains a NUL character")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ContentError(f"{what} {name!r} is an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ContentError(f"{what} {name!r} contains '..'")
    return PurePosixPath(*parts) if parts else None


def _describe_tar_type(member: tarfile.TarInfo) -> str:
    if member.ischr():
        return "character device"
    if member.isblk():
        return "block device"
    if member.isfifo():
        return "fifo"
    return f"special entry (type {member.type!r})"


def _tar_entries(archive: tarfile.TarFile) -> list[_Entry]:
    entries: list[_Entry] = []
    for member in archive.getmembers():
        if member.isdir():
            kind = "dir"
        elif member.isreg():
            kind = "file"
        elif member.issym():
            kind = "symlink"
        elif member.islnk():
            kind = "hardlink"
        else:
            raise ContentError(f"archive entry {member.name!r} is a "
                               f"{_describe_tar_type(member)}; only files, directories and "
                               "links are extracted")
        path = _entry_path(member.name)
        if path is None:
            if kind == "dir":
                continue
            raise ContentError(f"archive entry {member.name!r} has no name")
        entries.append(_Entry(member.name, path, kind, member.size if kind == "file" else 0,
                              member.linkname, member))
    return entries


def _zip_entries(archive: zipfile.ZipFile) -> list[_Entry]:
    entries: list[_Entry] = []
    for info in archive.infolist():
        mode = info.external_attr >> 16 if info.create_system == 3 else 0
        kind_bits = stat.S_IFMT(mode)
        link = ""
        if info.is_dir() or kind_bits == stat.S_IFDIR:
            kind = "dir"
        elif kind_bits == stat.S_IFLNK:
            kind = "symlink"
            if info.file_size > _MAX_LINK_TEXT:
                raise ContentError(f"archive entry {info.filename!r} is a symlink with an "
                                   f"over-long target ({info.file_size} bytes)")
            try:
                link = archive.read(info).decode("utf-8")
            except UnicodeDecodeError:
                raise ContentError(f"archive entry {info.filename!r} is a symlink whose "
                                   "target is not UTF-8") from None
        elif kind_bits in (0, stat.S_IFREG):
            kind = "file"
        else:
            what = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                    stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}.get(kind_bits, "special entry")
            raise ContentError(f"archive entry {info.filename!r} is a {what}; only files, "
                               "directories and symlinks are extracted")
        path = _entry_path(info.filename)
        if path is None:
            if kind == "dir":
                continue
            raise ContentError(f"archive entry {info.filename!r} has no name")
        entries.append(_Entry(info.filename, path, kind, info.file_size if kind == "file" else 0,
                              link, info))
    return entries


LinkLookup = Callable[[PurePosixPath], tuple[str, bool] | None]


def _link_escapes(start: PurePosixPath, link: str, lookup: LinkLookup) -> bool:
    """Whether `link`, read in directory `start` (relative to the destination), resolves
    outside the destination. `lookup(path)` gives the text of a symlink at `path`, and whether
    that text is relative to the destination root, or None when `path` is no symlink."""
    if link.startswith("/") or not link:
        return True
    stack = list(start.parts)
    todo = deque(link.split("/"))
    hops = 0
    while todo:
        part = todo.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
            continue
        stack.append(part)
        found = lookup(PurePosixPath(*stack))
        if found is None:
            continue
        hops += 1
        if hops > _MAX_LINK_HOPS:
            return True
        text, from_root = found
        stack.pop()
        if from_root:
            stack = []
        elif text.startswith("/"):
            return True
        todo.extendleft(reversed(text.split("/")))
    return False


def _validate(entries: list[_Entry], dest: Path, max_bytes: int) -> None:
    """Refuse the whole archive if any entry could write or point outside `dest`."""
    base = os.path.abspath(dest)
    real_base = os.path.realpath(dest)
    links = {entry.path: entry.link for entry in entries if entry.kind == "symlink"}

    def lookup(path: PurePosixPath) -> tuple[str, bool] | None:
        if path in links:
            return links[path], False
        host = os.path.join(base, *path.parts)
        if not os.path.islink(host):
            return None
        text = os.readlink(host)
        if not text.startswith("/"):
            return text, False
        real = os.path.realpath(host)
        if _within(real, real_base):
            return os.path.relpath(real, real_base), True
        return "/", False

    kinds: dict[PurePosixPath, str] = {}
    files: set[PurePosixPath] = set()
    total = 0
    for entry in entries:
        for parent in entry.path.parents:
            if parent in links:
                raise ContentError(f"archive entry {entry.name!r} lies below the symlink entry "
                                   f"{str(parent)!r}")
        previous = kinds.get(entry.path)
        if previous is not None and "symlink" in (previous, entry.kind):
            raise ContentError(f"archive entry {entry.name!r} appears more than once, at least "
                               "once as a symlink")
        kinds[entry.path] = entry.kind
        host = os.path.realpath(os.path.join(base, *entry.path.parts))
        if not _within(host, real_base):
            raise ContentError(f"archive entry {entry.name!r} would be written outside the "
                               f"destination (to {host!r}) through an existing symlink")
        if entry.kind == "symlink":
            if _link_escapes(entry.path.parent, entry.link, lookup):
                raise ContentError(f"archive entry {entry.name!r} is a symlink to "
                                   f"{entry.link!r}, outside the destination")
        elif entry.kind == "hardlink":
            target = _entry_path(entry.link, f"hard link target of {entry.name!r}")
            if target is None or target not in files:
                raise ContentError(f"archive entry {entry.name!r} is a hard link to "
                                   f"{entry.link!r}, which is no earlier file of the archive")
        elif entry.kind == "file":
            files.add(entry.path)
            total += entry.size
            if total > max_bytes:
                raise ContentError(f"the archive unpacks to more than the limit of {max_bytes} "
                                   "bytes")


def _archive_kind(archive: Path) -> str:
    try:
        with open(archive, "rb") as stream:
            head = stream.read(512)
    except FileNotFoundError:
        raise ContentError(f"archive {str(archive)!r} does not exist") from None
    except IsADirectoryError:
        raise ContentError(f"archive {str(archive)!r} is a directory") from None
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")) or head[257:262] == b"ustar":
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ContentError(f"{str(archive)!r} is not a tar (plain, gz, bz2, xz) or zip archive")


def extract(archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Path]:
    """Unpack a tar (plain, gz, bz2 or xz) or zip archive, recognised by its content, into
    `dest` (created if missing) and return the host paths of its entries in archive order.

    Every entry is checked before anything is written; one that is absolute, contains `..`,
    lies below an in-archive symlink, would be written through an existing symlink out of
    `dest`, is a symlink or hard link resolving outside `dest`, or is a device, fifo or socket
    refuses the whole archive, as does more than `max_bytes` of file content."""
    archive, dest = Path(archive), Path(dest)
    kind = _archive_kind(archive)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zipped:
                entries = _zip_entries(zipped)
                _validate(entries, dest, max_bytes)
                _unzip(zipped, entries, dest)
        else:
            with tarfile.open(archive, "r:*") as tarred:
                entries = _tar_entries(tarred)
                _validate(entries, dest, max_bytes)
                dest.mkdir(parents=True, exist_ok=True)
                members = [entry.member for entry in entries]
                if hasattr(tarfile, "data_filter"):
                    tarred.extractall(dest, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters
                    tarred.extractall(dest, members=members)
    except ContentError:
        raise
    except tarfile.FilterError as exc:
        raise ContentError(f"tarfile's data filter refused an entry: {exc}") from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ContentError(f"{str(archive)!r} is corrupt: {exc}") from exc
    result: list[Path] = []
    seen: set[PurePosixPath] = set()
    for entry in entries:
        if entry.path not in seen:
            seen.add(entry.path)
            result.append(dest.joinpath(*entry.path.parts))
    return result


def _unzip(archive: zipfile.ZipFile, entries: list[_Entry], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        host = dest.joinpath(*entry.path.parts)
        if entry.kind == "dir":
            host.mkdir(parents=True, exist_ok=True)
        elif entry.kind == "file":
            host.parent.mkdir(parents=True, exist_ok=True)
            if os.path.islink(host) or host.is_file():
                host.unlink()
            with archive.open(entry.member) as src, open(host, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            mode = entry.member.external_attr >> 16
            if entry.member.create_system == 3 and mode & 0o100:
                os.chmod(host, 0o755)
    for entry in entries:  # symlinks last; no entry lies below one (checked)
        if entry.kind == "symlink":
            host = dest.joinpath(*entry.path.parts)
            host.parent.mkdir(parents=True, exist_ok=True)
            if os.path.islink(host) or host.is_file():
                host.unlink()
            os.symlink(entry.link, host)
