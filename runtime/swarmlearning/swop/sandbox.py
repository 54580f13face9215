"""Container paths laid out under a per-task sandbox directory (the SWOP process runtime).

HPE task files name absolute container paths: a RUN_SWARM task's WorkingDir (`/tmp/test`), the
PrivateContent mount point where the profile's `privatedata.src` appears, SharedContent targets
(`/tmp/test/model`) and identity files (`/swarm-cert/sl-1-key.pem`). Without containers, SWOP
gives each task a sandbox root and places every container path under it (`/tmp/test/model` is
`<root>/tmp/test/model`), so task files run unchanged once their paths are mapped.

What `Sandbox.materialize` builds:

* A mount with no other mount below its target becomes one symlink, `<root>/<target>` -> the
  source's absolute path. Reads and writes through it reach the source, as with a bind mount.
* A mount with other mounts below it (PrivateContent `/tmp/test` holding SharedContent
  `/tmp/test/model`) becomes a real directory that mirrors its source one level deep: one symlink
  per source entry. An entry on the way to an inner mount is mirrored again one level down
  (recursively); an entry with the same name as an inner mount is shadowed by that mount.
* Directories that lead to mounts but belong to none (`/swarm-cert`) are plain directories.

Materializing never creates, changes or removes anything in a source: mount points live in the
sandbox. What follows from that:

* A file a program creates directly in a mirrored directory (a new file in `/tmp/test` when
  `/tmp/test/model` is mounted as well) stays in the sandbox and goes away with `cleanup`. Files
  created in any mounted or mirrored subdirectory land in the source.
* `ensure_dir` may create directories inside a mounted source, as a container writing into its
  bind mount would, so a scratch directory (`SCRATCH_DIR=user1` under WorkingDir) ends up in the
  private source. It never creates anything inside a read-only mount.
* `read_only` cannot be enforced with symlinks; `ensure_dir` honours it, and it is kept on the
  mount for callers that can enforce it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

_ROOT = PurePosixPath("/")


class SandboxError(ValueError):
    """A mount or container path that the sandbox cannot honour."""


@dataclass(frozen=True)
class Mount:
    """`source` (a host file or directory) seen at the absolute container path `target`."""

    target: str
    source: Path
    read_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.source, Path):
            object.__setattr__(self, "source", Path(self.source))

    def describe(self) -> str:
        """`mount '/tmp/test/model' (source '/home/u/proj/model')`, for error messages."""
        return f"mount {self.target!r} (source {str(self.source)!r})"


def normalise(path: object, what: str = "container path", *,
              allow_root: bool = False) -> PurePosixPath:
    """An absolute container path in canonical form: `/tmp/test/` and `/tmp//./test` become
    `/tmp/test`. Relative paths, `..` components and (unless `allow_root`) `/` are refused."""
    if not isinstance(path, str) or not path:
        raise SandboxError(f"{what} must be a non-empty string, got {path!r}")
    if "\x00" in path:
        raise SandboxError(f"{what} {path!r} contains a NUL character")
    if not path.startswith("/"):
        raise SandboxError(f"{what} {path!r} is relative; container paths start with '/'")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise SandboxError(f"{what} {path!r} contains a '..' component")
    if not parts and not allow_root:
        raise SandboxError(f"{what} {path!r} is the container root '/'")
    return PurePosixPath("/", *parts)


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _under(path: PurePosixPath, prefix: PurePosixPath) -> bool:
    """`path` is `prefix` or lies below it."""
    return path == prefix or prefix in path.parents


class Sandbox:
    """Mounts laid out under `root`; see the module docstring for the layout rules.

    Typical use: `add` every mount, `materialize`, `ensure_dir(WorkingDir)`, run the processes
    with `host_path(WorkingDir)` as cwd and `rewrite_env(env)`, then `cleanup`. Also a context
    manager whose exit calls `cleanup`.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._mounts: dict[PurePosixPath, Mount] = {}
        self._prefixes: set[PurePosixPath] = set()
        # real directories made by materialize/ensure_dir -> the source directory they mirror
        self._mirrors: dict[PurePosixPath, Path | None] = {}
        self._materialized = False

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleanup()

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The mounts added so far, with normalised targets and absolute sources."""
        return tuple(self._mounts.values())

    @property
    def materialized(self) -> bool:
        return self._materialized

    def add(self, mount: Mount) -> None:
        """Register a mount. Its target must be absolute, free of `..`, not `/`, and not already
        mounted; its source must exist and must not lie inside the sandbox root."""
        if self._materialized:
            raise SandboxError(f"cannot add {mount.describe()}: the sandbox is already "
                               "materialized")
        target = normalise(mount.target, f"target of {mount.describe()}")
        if target in self._mounts:
            raise SandboxError(f"duplicate target: {mount.describe()} and "
                               f"{self._mounts[target].describe()} both mount {str(target)!r}")
        source = Path(os.path.abspath(mount.source))
        if not source.exists():
            raise SandboxError(f"source {str(source)!r} of {mount.describe()} does not exist")
        root = str(self.root)
        if _within(str(source), root) or _within(os.path.realpath(source),
                                                 os.path.realpath(root)):
            raise SandboxError(f"source {str(source)!r} of {mount.describe()} lies inside the "
                               f"sandbox root {root!r}, which cleanup removes")
        self._mounts[target] = Mount(str(target), source, bool(mount.read_only))

    def register_prefix(self, container_path: str) -> None:
        """Have `rewrite_env` also map values at or under `container_path` (e.g. WorkingDir)."""
        self._prefixes.add(normalise(container_path, "prefix"))

    def host_path(self, container_path: str) -> Path:
        """Where the absolute `container_path` lies on the host: `<root>/<container_path>`. The
        path is mapped lexically; nothing is created or resolved."""
        path = normalise(container_path, allow_root=True)
        return self.root.joinpath(*path.parts[1:])

    def owner(self, container_path: str) -> Mount | None:
        """The innermost mount whose target is `container_path` or one of its ancestors."""
        path = normalise(container_path, allow_root=True)
        best: Mount | None = None
        for target, mount in self._mounts.items():
            if _under(path, target) and (best is None or len(target.parts)
                                         > len(PurePosixPath(best.target).parts)):
                best = mount
        return best

    # -- materialize ---------------------------------------------------------------------------

    def materialize(self) -> None:
        """Lay every mount out under the root (see the module docstring). Everything is
        checked before the first directory or symlink is made; nothing is written outside the
        root, and nothing at all inside a source."""
        if self._materialized:
            raise SandboxError(f"sandbox {str(self.root)!r} is already materialized")
        dirs: list[tuple[PurePosixPath, Path | None]] = []
        links: list[tuple[PurePosixPath, Path]] = []
        children: dict[PurePosixPath, set[str]] = {}
        leads: set[PurePosixPath] = set()
        for target in self._mounts:
            child = target
            for parent in target.parents:
                children.setdefault(parent, set()).add(child.name)
                if parent != _ROOT:
                    leads.add(parent)
                child = parent
        for mount in self._mounts.values():
            if not mount.source.exists():
                raise SandboxError(f"source {str(mount.source)!r} of {mount.describe()} "
                                   "does not exist")
        self._plan(_ROOT, None, None, children, leads, dirs, links)

        if os.path.islink(self.root) or (self.root.exists() and not self.root.is_dir()):
            raise SandboxError(f"sandbox root {str(self.root)!r} is not a directory")
        self.root.mkdir(parents=True, exist_ok=True)
        self._mirrors[_ROOT] = None
        for path, backing in dirs:
            host = self.host_path(str(path))
            try:
                host.mkdir()
            except FileExistsError:
                if os.path.islink(host) or not host.is_dir():
                    raise SandboxError(f"{str(host)!r} already exists and is not a "
                                       "directory") from None
            self._mirrors[path] = backing
        for path, source in links:
            host = self.host_path(str(path))
            try:
                os.symlink(source, host)
            except FileExistsError:
                raise SandboxError(f"cannot place {str(path)!r}: {str(host)!r} already "
                                   "exists") from None
        self._materialized = True

    def _plan(self, directory: PurePosixPath, backing: Path | None, holder: Mount | None,
              children: dict[PurePosixPath, set[str]], leads: set[PurePosixPath],
              dirs: list[tuple[PurePosixPath, Path | None]],
              links: list[tuple[PurePosixPath, Path]]) -> None:
        """Plan the entries of the real directory `directory`, which mirrors `backing` (a
        source directory of mount `holder`, or None for a plain directory)."""
        names = set(children.get(directory, ()))
        if backing is not None:
            try:
                names.update(os.listdir(backing))
            except OSError as exc:
                raise SandboxError(f"cannot list {str(backing)!r} of {holder.describe()}: "
                                   f"{exc.strerror or exc}") from exc
        for name in sorted(names):
            path = directory / name
            mount = self._mounts.get(path)
            if mount is not None and path not in leads:
                links.append((path, mount.source))
            elif mount is not None:
                if not mount.source.is_dir():
                    inner = sorted(str(t) for t in self._mounts if path in t.parents)
                    raise SandboxError(f"{mount.describe()} is not a directory, so mounts "
                                       f"below it ({', '.join(inner)}) cannot be placed")
                dirs.append((path, mount.source))
                self._plan(path, mount.source, mount, children, leads, dirs, links)
            elif path in leads:
                sub = backing / name if backing is not None else None
                if sub is not None and os.path.lexists(sub) and not sub.is_dir():
                    inner = sorted(str(t) for t in self._mounts if path in t.parents)
                    raise SandboxError(
                        f"mounts {', '.join(inner)} need {str(path)!r} to be a directory, but "
                        f"{str(sub)!r} in the source of {holder.describe()} is not one")
                if sub is not None and not sub.is_dir():
                    sub = None
                dirs.append((path, sub))
                self._plan(path, sub, holder, children, leads, dirs, links)
            else:
                links.append((path, backing / name))

    # -- after materialize ---------------------------------------------------------------------

    def ensure_dir(self, container_path: str) -> Path:
        """Make `container_path` an existing directory and return its host path.

        Outside every mount the directory is a plain one under the root. Inside a mount it is
        created in the mount's source (like a container writing into a bind mount): through a
        symlink, or, in a mirrored directory, as a new source directory plus a mirror symlink to
        it. Refused inside a read-only mount, and where a non-directory is in the way."""
        if not self._materialized:
            raise SandboxError(f"cannot create {container_path!r}: materialize() first")
        target = normalise(container_path, "directory", allow_root=True)
        host = self.host_path(str(target))
        if host.is_dir():
            return host
        holder = self.owner(str(target))
        if holder is not None and holder.read_only:
            raise SandboxError(f"cannot create {str(target)!r}: it lies inside read-only "
                               f"{holder.describe()}")
        current = _ROOT
        for name in target.parts[1:]:
            path = current / name
            step = self.host_path(str(path))
            rest = target.relative_to(path).parts
            if os.path.islink(step):
                # a mount or a mirrored source entry: the rest belongs to its source
                self._make_inside(step, rest, target)
                return host
            if step.exists():
                if not step.is_dir():
                    raise SandboxError(f"cannot create {str(target)!r}: {str(path)!r} is not "
                                       "a directory")
                current = path
                continue
            backing = self._mirrors.get(current)
            if backing is not None:
                source = backing / name
                if os.path.lexists(source) and not source.is_dir():
                    raise SandboxError(f"cannot create {str(target)!r}: {str(source)!r} is "
                                       "not a directory")
                source.mkdir(exist_ok=True)
                os.symlink(source, step)
                self._make_inside(step, rest, target)
                return host
            step.mkdir()
            self._mirrors[path] = None
            current = path
        return host

    @staticmethod
    def _make_inside(start: Path, rest: tuple[str, ...], target: PurePosixPath) -> None:
        if not start.is_dir():
            raise SandboxError(f"cannot create {str(target)!r}: {str(start)!r} is not a "
                               "directory")
        try:
            start.joinpath(*rest).mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise SandboxError(f"cannot create {str(target)!r}: a file is in the "
                               "way") from None

    def rewrite_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """A copy of `env` in which every value that is an absolute container path at or under
        a mount target or a registered prefix is replaced by its host path (a trailing slash is
        kept). Other values (`model`, `5`, `http://x/y`, `/usr/bin`) are unchanged."""
        anchors = set(self._mounts) | self._prefixes
        rewritten: dict[str, str] = {}
        for key, value in env.items():
            rewritten[key] = value
            if not isinstance(value, str) or not value.startswith("/"):
                continue
            try:
                path = normalise(value)
            except SandboxError:
                continue
            if any(_under(path, anchor) for anchor in anchors):
                host = str(self.host_path(str(path)))
                rewritten[key] = host + "/" if value.endswith("/") else host
        return rewritten

    def cleanup(self) -> None:
        """Remove the root. Symlinks are unlinked, never followed, so sources survive (only
        what `ensure_dir` or the processes created inside sources remains there)."""
        if os.path.islink(self.root):
            os.unlink(self.root)
        elif self.root.exists():
            shutil.rmtree(self.root)
        self._mirrors.clear()
        self._materialized = False


def clear_task_dir(workdir: Path, keep: tuple[str, ...] = ("logs",)) -> list[str]:
    """Remove what a task left in its directory, but `keep` (its logs): sandboxes, channels,
    scratch files. Symlinks are unlinked, never followed, so mount sources survive. Returns the
    names removed."""
    removed = []
    for entry in sorted(workdir.iterdir()) if workdir.is_dir() else ():
        if entry.name in keep:
            continue
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed
