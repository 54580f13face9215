"""HPE's own files (examples, init scripts, task and profile YAML), read from a copy of HPE's
swarm-learning repository that HPE_SWARM_LEARNING_DIR names; they are never copied into this
repository, and no other place is looked at.

HPE_SWARM_LEARNING_DIR is a checkout of github.com/HewlettPackard/swarm-learning (a directory with
`examples/` in it), or a bare clone of it (its files are then read at HEAD). When it is unset,
or names neither, `hpe_repo()` is None and the tests that need HPE's files skip, with a reason
(SKIP_REASON) that names the variable.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path

import pytest

HPE_REPO_ENV = "HPE_SWARM_LEARNING_DIR"
HPE_REPO_URL = "https://github.com/HewlettPackard/swarm-learning"


def _usable(root: Path) -> bool:
    """A checkout (examples/ in it) or a bare clone (HEAD and objects/ in it)."""
    return (root / "examples").is_dir() or ((root / "HEAD").is_file()
                                            and (root / "objects").is_dir())


def hpe_repo() -> Path | None:
    """The copy of HPE's repository HPE_SWARM_LEARNING_DIR names ("~" expanded), or None when the
    variable is unset or names no checkout or bare clone."""
    value = os.environ.get(HPE_REPO_ENV, "").strip()
    if not value:
        return None
    root = Path(value).expanduser()
    return root if _usable(root) else None


def _skip_reason() -> str:
    value = os.environ.get(HPE_REPO_ENV, "").strip()
    if value:
        return (f"{HPE_REPO_ENV}={value} is not a checkout (nor a bare clone) of HPE's "
                f"swarm-learning repository ({HPE_REPO_URL})")
    return f"{HPE_REPO_ENV} is not set: point it at a checkout of {HPE_REPO_URL}"


SKIP_REASON = _skip_reason()
needs_hpe = pytest.mark.skipif(hpe_repo() is None, reason=SKIP_REASON)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={root}", *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def _names(root: Path) -> list[str]:
    """Every file of the copy, as a path relative to its top, sorted."""
    if not (root / "examples").is_dir():
        return sorted(_git(root, "ls-tree", "-r", "--name-only", "HEAD").splitlines())
    names = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        names += [str(Path(folder, name).relative_to(root)) for name in files]
    return sorted(names)


def hpe_file(path: str) -> str:
    """The text of one file of HPE's repository, by its path there (needs `hpe_repo()`)."""
    root = hpe_repo()
    if root is None:
        pytest.skip(SKIP_REASON)
    if (root / "examples").is_dir():
        return (root / path).read_text(encoding="utf-8")
    return _git(root, "show", f"HEAD:{path}")


def hpe_files(*patterns: str) -> list[tuple[str, str]]:
    """(relative path, text) of every file of HPE's repository matching one of the fnmatch
    `patterns` (`*` crosses directories), sorted by path; [] without `hpe_repo()`."""
    root = hpe_repo()
    if root is None:
        return []
    try:
        return [(name, hpe_file(name)) for name in _names(root)
                if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"cannot read HPE's files from {HPE_REPO_ENV}={root}: {exc}") from None
