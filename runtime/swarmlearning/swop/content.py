"""MAKE_SWARM_USER_CONTENT for the process runtime: download and extract into a directory.

An HPE content task fills Docker volumes:

    Body:
      ContentType: BUILDCONTENT | SWARMCONTENT
      OpsList:
        - {Operation: DOWNLOAD, Target: "https://host/pkg.tar.gz", Options: [{Out: pkg.tar.gz}]}
        - {Operation: EXTRACT, Target: pkg.tar.gz, Options: [{Out: pkg}]}

Here a volume is a directory, and `run_ops` applies the OpsList inside it, in order:

* DOWNLOAD fetches `Target` (`http://`, `https://`, `file://` or an absolute host path; a local
  directory is copied as a tree) to `<volume>/<Out>`; `Out` defaults to the Target's basename.
  `Out` is taken literally as the output path (a trailing slash does not mean "into").
* EXTRACT unpacks a tar (plain, gz, bz2, xz) or zip archive into `<volume>/<Out>` (default: the
  volume root). `Target` is either a path relative to the volume (typically an earlier
  DOWNLOAD's Out) or a URI / absolute path, which is read in place or downloaded to a temporary
  file first.

`Out` and relative Targets must stay inside the volume, also through symlinks already there.
Archives are checked entry by entry before anything is written: absolute names, `..`, links
that resolve outside the destination, entries below an in-archive symlink, device files and
fifos are refused, and tar extraction also runs under tarfile's "data" filter.

Volume naming (`volume_names`): BUILDCONTENT makes one volume named after the task's Outcome;
SWARMCONTENT makes one copy per SL node of the SWOP profile, named `<Outcome>-<idx>` for node
indices 0..n-1, so node `idx` mounts its own copy.
"""

from __future__ import annotations

import lzma
import os
import shutil
import ssl
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

MAX_OPS = 20
DEFAULT_MAX_BYTES = 8 << 30
MAX_REDIRECTS = 10
CONTENT_TYPES = ("BUILDCONTENT", "SWARMCONTENT")
OPERATIONS = ("DOWNLOAD", "EXTRACT")

_CHUNK = 1 << 20
_MAX_LINK_TEXT = 4096
_MAX_LINK_HOPS = 40

Verify = bool | str | os.PathLike[str] | ssl.SSLContext


class ContentError(RuntimeError):
    """A content operation that failed; run_ops prefixes `OpsList[i] OPERATION 'target':`."""


# -- download ----------------------------------------------------------------------------------


def _classify(uri: str) -> tuple[str, str]:
    """("http", uri) for http(s) URIs, ("file", path) for file:// URIs and absolute paths."""
    if not isinstance(uri, str) or not uri.strip():
        raise ContentError(f"target {uri!r} is empty")
    if uri.startswith("/"):
        return "file", uri
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ContentError(f"{uri!r} names no host")
        return "http", uri
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ContentError(f"file URI {uri!r} names the remote host {parts.netloc!r}")
        path = url2pathname(parts.path)
        if not path.startswith("/"):
            raise ContentError(f"file URI {uri!r} does not name an absolute path")
        return "file", path
    if scheme:
        raise ContentError(f"unsupported scheme {scheme!r} in {uri!r} "
                           "(use http://, https://, file:// or an absolute path)")
    raise ContentError(f"{uri!r} is neither a URI (http://, https://, file://) nor an "
                       "absolute path")


def download(uri: str, dest: Path, *, timeout: float = 60, max_bytes: int = DEFAULT_MAX_BYTES,
             verify: Verify = True, max_redirects: int = MAX_REDIRECTS) -> Path:
    """Fetch `uri` to `dest` and return `dest`.

    http(s) is streamed through httpx with TLS verified (`verify`: False, a CA bundle file or
    directory, or an `ssl.SSLContext`), at most `max_redirects` redirects, `timeout` seconds
    per network operation, and the proxy variables of the environment. `file://` URIs and
    absolute paths copy a regular file, or a directory tree (symlinks copied as symlinks;
    `dest` must not exist yet). More than `max_bytes` is refused. A file is written to a
    temporary name beside `dest` and renamed into place, so a failure leaves nothing behind.
    """
    kind, where = _classify(uri)
    dest = Path(dest)
    if dest.is_dir():
        raise ContentError(f"destination {str(dest)!r} already exists as a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if kind == "http":
        _fetch_http(where, dest, timeout, max_bytes, verify, max_redirects)
    else:
        _copy_local(Path(where), dest, max_bytes)
    return dest


def _ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    bundle = os.fspath(verify)
    if os.path.isdir(bundle):
        return ssl.create_default_context(capath=bundle)
    if os.path.isfile(bundle):
        return ssl.create_default_context(cafile=bundle)
    raise ContentError(f"CA bundle {bundle!r} does not exist")


def _fetch_http(uri: str, dest: Path, timeout: float, max_bytes: int, verify: Verify,
                max_redirects: int) -> None:
    context = _ssl_verify(verify)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, httpx.Client(
                timeout=timeout, verify=context, follow_redirects=True,
                max_redirects=max_redirects) as client, client.stream("GET", uri) as response:
            if response.status_code >= 400:
                raise ContentError(f"HTTP {response.status_code} "
                                   f"{response.reason_phrase} from {response.url}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ContentError(f"{uri} is {int(declared)} bytes, more than the limit of "
                                   f"{max_bytes} bytes")
            received = 0
            for chunk in response.iter_bytes(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise ContentError(f"{uri} sent more than the limit of {max_bytes} bytes")
                out.write(chunk)
        os.replace(tmp, dest)
    except httpx.TooManyRedirects as exc:
        raise ContentError(f"more than {max_redirects} redirects fetching {uri}") from exc
    except httpx.HTTPError as exc:
        raise ContentError(f"fetching {uri} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _tree_size(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _copy_local(source: Path, dest: Path, max_bytes: int) -> None:
    if not source.exists():
        raise ContentError(f"{str(source)!r} does not exist")
    if source.is_dir():
        real_source, real_dest = os.path.realpath(source), os.path.realpath(dest)
        if _within(real_dest, real_source):
            raise ContentError(f"cannot copy {str(source)!r} into itself ({str(dest)!r})")
        if os.path.lexists(dest):
            raise ContentError(f"destination {str(dest)!r} already exists")
        size = _tree_size(source)
        if size > max_bytes:
            raise ContentError(f"{str(source)!r} holds {size} bytes, more than the limit of "
                               f"{max_bytes} bytes")
        tmp = tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            shutil.copytree(source, tmp, symlinks=True, dirs_exist_ok=True)
            os.rename(tmp, dest)
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
        return
    if not source.is_file():
        raise ContentError(f"{str(source)!r} is neither a regular file nor a directory")
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            copied = 0
            while chunk := src.read(_CHUNK):
                copied += len(chunk)
                if copied > max_bytes:
                    raise ContentError(f"{str(source)!r} is more than the limit of "
                                       f"{max_bytes} bytes")
                out.write(chunk)
        shutil.copymode(source, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


# -- extract -----------------------------------------------------------------------------------


@dataclass
class _Entry:
    name: str              # as stored in the archive
    path: PurePosixPath    # normalised, relative to the destination
    kind: str              # file, dir, symlink, hardlink
    size: int
    link: str
    member: tarfile.TarInfo | zipfile.ZipInfo


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


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


# -- OpsList -----------------------------------------------------------------------------------


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
