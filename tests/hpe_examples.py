"""HPE's own example files, read where a copy exists; they are never copied into this
repository. Point HPE_SWARM_LEARNING_DIR at a checkout of HewlettPackard/swarm-learning, or keep
a git mirror where HPE_MIRROR looks. Without either, the tests that use them skip."""

from __future__ import annotations

import fnmatch
import os
import subprocess
from pathlib import Path

HPE_MIRROR = Path("/work/.mirror/HewlettPackard+swarm-learning/repo")


def hpe_files(*patterns: str) -> list[tuple[str, str]]:
    """(relative path, text) of every example file matching one of the fnmatch `patterns`
    (`*` crosses directories), from a checkout or else the git mirror."""
    for root in (os.environ.get("HPE_SWARM_LEARNING_DIR"), "/tmp/hpe"):
        if root and Path(root, "examples").is_dir():
            found = sorted(p for p in Path(root).rglob("*.yaml")
                           if any(fnmatch.fnmatch(str(p.relative_to(root)), pat)
                                  for pat in patterns))
            if found:
                return [(str(p.relative_to(root)), p.read_text(encoding="utf-8"))
                        for p in found]
    if not HPE_MIRROR.is_dir():
        return []

    def git(*args: str) -> str:
        return subprocess.run(["git", f"--git-dir={HPE_MIRROR}", *args], check=True,
                              capture_output=True, text=True).stdout

    try:
        names = [n for n in git("ls-tree", "-r", "--name-only", "HEAD").splitlines()
                 if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
        return [(name, git("show", f"HEAD:{name}")) for name in names]
    except (OSError, subprocess.CalledProcessError):
        return []
