"""Structured logs for every daemon: `<time> <logger> : <LEVEL> : <message>` (HPE's shape), or
one JSON object per line with SWARM_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import os
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}.{int(record.msecs):03d}",
                 "logger": record.name,
                 "level": record.levelname, "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str | None = None) -> None:
    """Log to stderr, line-buffered, in the format SWARM_LOG_FORMAT names."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("SWARM_LOG_FORMAT", "").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s.%(msecs)03d %(name)s : %(levelname)s : %(message)s",
            "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("SWARM_LOG_LEVEL") or "INFO").upper())
    for noisy in ("uvicorn.error", "uvicorn.access", "httpx", "httpcore", "web3", "eth",
                  "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
