"""What the content modules share: the ContentError every content operation raises, the default
size limit and copy chunk, and the rule for whether a resolved path lies inside a root."""

from __future__ import annotations

import os

DEFAULT_MAX_BYTES = 8 << 30

_CHUNK = 1 << 20


class ContentError(RuntimeError):
    """A content operation that failed; run_ops prefixes `OpsList[i] OPERATION 'target':`."""


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root
