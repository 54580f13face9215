"""The connection side of HPE's SWCI web client: SwciSession takes HPE's constructor arguments
(server, port, client certificate, logger, caching), sends each SWCI command as one
POST /exec?cmd=... or a task definition as one POST /uploadTaskDef, and turns each reply into
output lines, keeping cached replies and the last command's error for getErrors(). Swci adds
the command methods on top."""

from __future__ import annotations

import logging
import os
import ssl
from enum import Enum
from pathlib import Path
from typing import TypeVar

import httpx

from swarmlearning.defaults import SWCI_WEB_PORT
from swarmlearning.swci.transport import (
    UPLOAD_TIMEOUT,
    base_url,
    command_timeout,
    http_client,
    request_timeout,
    tls_context,
)
from swarmlearning.swci.weblog import default_logger, log_level

__all__ = ["SwciCacheKey", "SwciSession"]

_Session = TypeVar("_Session", bound="SwciSession")


class SwciCacheKey(Enum):
    """Commands whose replies are cached; the names and the trailing spaces are HPE's."""

    GET_CONTEXT_INFO = "get context info "
    GET_CONTRACT_INFO = "get contract info "
    GET_TASK_BODY = "get task body "
    GET_TASK_INFO = "get task info "
    GET_TASKRUNNER_INFO = "get taskrunner info "
    LIST_CONTEXT = "list contexts"
    LIST_CONTRACTS = "list contracts"
    LIST_TASKS = "list tasks"
    LIST_TASKRUNNERS = "list taskrunners"


class SwciSession:
    """A connection to the SWCI web API (`swci serve`, HPE's SWCI_MODE=WEB), with HPE's
    constructor and the methods that are about the client itself rather than a command."""

    def __init__(self, swciIp: str, port: int = SWCI_WEB_PORT,
                 clientCert: str | os.PathLike[str] | None = None,
                 clientPKey: str | os.PathLike[str] | None = None,
                 clientCABundle: str | os.PathLike[str] | None = None,
                 logger: logging.Logger | None = None,
                 logLv: int | str = logging.WARNING,
                 enableCaching: bool = True,
                 *, _transport: httpx.BaseTransport | None = None) -> None:
        if isinstance(logger, logging.Logger):
            self._logger = logger
        else:
            self._logger = default_logger(log_level(logLv))
            self._logger.info("Using the default SWCI web logger")
        if swciIp is None or not str(swciIp).strip():
            self._logger.error("SWCI IP not provided!")
            raise RuntimeError("SWCI IP not provided!")
        if not isinstance(port, int) or isinstance(port, bool):
            self._logger.error("SWCI Port not Integer!")
            raise RuntimeError("SWCI Port not Integer!")
        if clientPKey is not None and clientCert is None:
            raise RuntimeError("clientPKey given without clientCert")

        secure = clientCert is not None or clientCABundle is not None
        verify: ssl.SSLContext | bool = True
        if secure:
            verify = tls_context(clientCert, clientPKey, clientCABundle, self._logger)
        else:
            self._logger.warning("No clientCert given: connecting over plain HTTP as HPE's "
                                 "client does; a server that requires mutual TLS refuses this")
        self._secure = secure
        base = base_url(str(swciIp).strip(), port, secure)
        self._exec_url = f"{base}/exec"
        self._upload_url = f"{base}/uploadTaskDef"
        self._http = http_client(verify, _transport)
        self._timeout = command_timeout(self._logger)
        self._logger.info("SWCI URL prefix = %s?cmd=", self._exec_url)

        self._enable_caching = bool(enableCaching)
        self._cache: dict[str, list[str]] = {}
        self._error: list[str] | None = None

    # -- local -------------------------------------------------------------------------------------

    def setLogLevel(self, logLv: int | str) -> None:
        """Set the logger's level: logging.DEBUG ... logging.CRITICAL, or their names."""
        self._logger.setLevel(log_level(logLv))

    def getErrors(self) -> str | None:
        """The error of the last command (its ERROR line), or None when it succeeded."""
        return "\n".join(self._error) if self._error else None

    def clearCache(self) -> None:
        """Forget every cached reply."""
        self._cache.clear()

    def close(self) -> None:
        """Close the HTTP connections (not part of HPE's API)."""
        self._http.close()

    def __enter__(self: _Session) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one way a command is sent -------------------------------------------------------------

    def _fail(self, line: str) -> list[str]:
        self._logger.error(line)
        self._error = [line]
        return []

    def _forget(self, *keys: str) -> None:
        for key in keys:
            self._cache.pop(key, None)

    def _exec(self, command: str, cache: bool = False, read_timeout: float | None = None,
              ) -> list[str]:
        """Send one command; its output lines, or [] with the error kept for getErrors()."""
        use_cache = cache and self._enable_caching
        if use_cache and self._cache.get(command):
            self._error = None
            return list(self._cache[command])
        self._logger.debug("POST %s cmd=%s", self._exec_url, command)
        try:
            reply = self._http.post(self._exec_url, params={"cmd": command},
                                    timeout=request_timeout(read_timeout or self._timeout))
        except httpx.HTTPError as exc:
            self._logger.debug("POST failed: %r", exc)
            hint = ("" if self._secure else
                    " (plain HTTP: a server that requires mutual TLS needs clientCert and "
                    "clientPKey)")
            return self._fail(f"ERROR : Exception occurred during POST request: "
                              f"{exc or type(exc).__name__}{hint}")
        try:
            result = reply.json()
        except ValueError:
            return self._fail(f"ERROR : SWCI server replied HTTP {reply.status_code} without "
                              f"JSON: {reply.text[:200]!r}")
        if not result:
            self._logger.warning("ERROR : Command did not produce output")
            self._error = ["ERROR : Command did not produce output"]
            return []
        content = result.get("CONTENT") if isinstance(result, dict) else None
        if not isinstance(content, list):
            return self._fail(f"ERROR : SWCI server reply (HTTP {reply.status_code}) has no "
                              "CONTENT list")
        lines: list[str] = []
        for element in content:
            text = str(element)
            if text.lstrip().startswith("ERROR "):
                return self._fail(text.strip())
            lines.extend(line.strip() for line in text.splitlines())
        if reply.is_error:
            return self._fail(f"ERROR : SWCI server replied HTTP {reply.status_code}"
                              + (f": {lines[0]}" if lines else ""))
        if lines and use_cache:
            self._cache[command] = list(lines)
        self._error = None
        return lines

    def _upload(self, path: Path) -> str:
        """Send a task definition file (POST /uploadTaskDef); the server's reply text, with an
        ERROR line of the reply (or an HTTP error) kept for getErrors(). RuntimeError when the
        file cannot be read or the upload cannot be sent."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"Task definition file cannot be read : {path} "
                               f"({exc.strerror or exc})") from exc
        try:
            reply = self._http.post(self._upload_url,
                                    files={"file": (path.name, data, "application/x-yaml")},
                                    timeout=request_timeout(UPLOAD_TIMEOUT))
        except httpx.HTTPError as exc:
            self._logger.error("Task definition upload failed: %s", exc)
            raise RuntimeError(f"Task definition file upload failed: {exc}") from exc
        self._error = None
        try:
            content = reply.json().get("CONTENT") or []
        except (ValueError, AttributeError):
            content = []
        errors = [str(c).strip() for c in content if str(c).lstrip().startswith("ERROR ")]
        if errors:
            self._fail(errors[0])
        elif reply.is_error:
            self._fail(f"ERROR : SWCI server replied HTTP {reply.status_code} to the upload")
        return reply.text
