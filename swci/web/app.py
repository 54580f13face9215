"""The SWCI web API as an ASGI app (Starlette), with HPE's wire format.

* `POST /exec?cmd=<command>` runs one SWCI command in the caller's session and answers
  `{"CONTENT": [lines], "DATA": {kind: value}}`; a failure is a line starting `ERROR `.
* `POST /uploadTaskDef` (multipart field `file`) stores a task YAML for `CREATE TASK FROM`.
* `GET /whoami` names the caller's identity; `GET /openapi.json` describes all of it.

The caller is its TLS client certificate, read from the connection (`peer_certificate`), never
from anything the request says. Commands run on worker threads. A session's commands take its
lock, except the waits (WAIT FOR TASKRUNNER, WAIT FOR IP/SERVICE, SLEEP), which change no
session state; other sessions never wait for each other.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from swci.interpreter import CollectingOutput
from swci.interpreter.output import INDENT
from swci.language import commands as c
from swci.language.errors import SwciSyntaxError
from swci.language.parser import parse_line
from swci.web.sessions import Session, Sessions

log = logging.getLogger("swci.web")

MAX_COMMAND = 4096
MAX_UPLOAD = 1 << 20
MAX_NAME = 128
SAFE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
UNLOCKED = (c.WaitForTaskrunner, c.WaitForIp, c.WaitForService, c.Sleep)


def _answer(lines: list[str], status: int = 200, data: dict[str, Any] | None = None
            ) -> JSONResponse:
    body: dict[str, Any] = {"CONTENT": lines}
    if data is not None:
        body["DATA"] = data
    return JSONResponse(body, status_code=status)


def _refusal(status: int, message: str) -> JSONResponse:
    return _answer([f"ERROR : {message}"], status, {})


def _unindented(line: str) -> str:
    return line[len(INDENT):] if line.startswith(INDENT) else line


def build_app(sessions: Sessions, certificate: Callable[[dict[str, Any]], bytes | None],
              *, max_upload: int = MAX_UPLOAD) -> Starlette:
    """The app; `certificate(scope)` gives the DER certificate of a request's client."""

    def session_of(request: Request) -> Session | None:
        der = certificate(request.scope)
        return sessions.for_certificate(der) if der else None

    async def execute(request: Request) -> JSONResponse:
        session = session_of(request)
        if session is None:
            return _refusal(401, "a client certificate is required")
        text = request.query_params.get("cmd")
        if text is None or not text.strip():
            return _refusal(422, "the query parameter cmd (an SWCI command) is missing")
        if len(text) > MAX_COMMAND or "\n" in text or "\r" in text:
            return _refusal(422, f"cmd must be one command line of at most {MAX_COMMAND} "
                                 "characters")
        try:
            command = parse_line(text, source="<web>")
        except SwciSyntaxError as exc:
            return _answer([f"ERROR : syntax error at column {exc.column}: {exc.message}"],
                           data={})
        if command is None:
            return _answer([], data={})

        def run() -> tuple[list[str], dict[str, Any]]:
            out = CollectingOutput()
            if isinstance(command, UNLOCKED):
                session.interp.execute(command, out)
            else:
                with session.lock:
                    session.interp.execute(command, out)
                    session.interp.exit_requested = False  # EXIT ends nothing here
            return [_unindented(line) for line in out.lines], dict(out.values)

        try:
            lines, data = await anyio.to_thread.run_sync(run)
        except Exception:
            log.exception("Command %r of %s failed", text, session.name)
            return _refusal(500, "the command failed inside the SWCI server; its log has the "
                                 "details")
        return _answer(lines, data=_jsonable(data))

    async def upload(request: Request) -> JSONResponse:
        session = session_of(request)
        if session is None:
            return _refusal(401, "a client certificate is required")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload + 64 * 1024:
            return _refusal(413, f"the upload is larger than {max_upload} bytes")
        try:
            form = await request.form(max_files=1, max_fields=8, max_part_size=max_upload)
        except Exception as exc:  # malformed multipart, too large a part, wrong content type
            return _refusal(422 if "size" not in str(exc).lower() else 413,
                            f"expected a multipart form with a field named file: {exc}")
        item = form.get("file")
        if not isinstance(item, UploadFile):
            return _refusal(422, "expected a multipart form with a field named file")
        name = item.filename or ""
        if not SAFE_NAME.fullmatch(name) or ".." in name:
            return _refusal(422, f"file name {name[:60]!r} is not allowed: use at most "
                                 f"{MAX_NAME} characters, letters, digits, '.', '_' and '-', "
                                 "with no path")
        content = await item.read(max_upload + 1)
        if len(content) > max_upload:
            return _refusal(413, f"the upload is larger than {max_upload} bytes")
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return _refusal(422, f"{name} is not UTF-8 text")
        await anyio.to_thread.run_sync(_store, session.uploads, name, content)
        return _answer([f"TASK DEFINITION UPLOADED : {name}"], data={"uploaded": name})

    async def whoami(request: Request) -> JSONResponse:
        session = session_of(request)
        if session is None:
            return _refusal(401, "a client certificate is required")
        return JSONResponse({"IDENTITY": session.identity, "NAME": session.name})

    async def openapi_json(request: Request) -> JSONResponse:
        return JSONResponse(OPENAPI)

    return Starlette(routes=[
        Route("/exec", execute, methods=["POST"]),
        Route("/uploadTaskDef", upload, methods=["POST"]),
        Route("/whoami", whoami, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ], exception_handlers={404: _not_found, 405: _not_allowed})


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return _refusal(404, f"no such endpoint: {request.method} {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> JSONResponse:
    response = _refusal(405, f"{request.method} is not allowed on {request.url.path}")
    allow = (getattr(exc, "headers", None) or {}).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def _store(directory: Path, name: str, content: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temp, directory / name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    """SN replies are JSON already; anything else (a Path, a tuple) becomes text or a list."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


_LINES = {"type": "object", "required": ["CONTENT"], "properties": {
    "CONTENT": {"type": "array", "items": {"type": "string"},
                "description": "Output lines; a failure line starts with 'ERROR '"},
    "DATA": {"type": "object", "description": "Structured results by kind (nodes, tasks, "
                                              "task, taskrunner_status, ...)"}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "SWCI web API", "version": "1",
             "description": "SWCI commands over HTTPS with mutual TLS; each client certificate "
                            "has its own session."},
    "paths": {
        "/exec": {"post": {
            "summary": "Run one SWCI command in the caller's session",
            "parameters": [{"name": "cmd", "in": "query", "required": True,
                            "schema": {"type": "string", "minLength": 1,
                                       "maxLength": MAX_COMMAND,
                                       "pattern": "^[^\\r\\n]*[^\\s][^\\r\\n]*$"},
                            "description": "The command line, e.g. LIST TASKS"}],
            "responses": {
                "200": {"description": "The command ran (it may have failed: see CONTENT)",
                        "content": {"application/json": {"schema": _LINES}}},
                "401": {"description": "No client certificate",
                        "content": {"application/json": {"schema": _LINES}}},
                "422": {"description": "No command, or not one line",
                        "content": {"application/json": {"schema": _LINES}}}}}},
        "/uploadTaskDef": {"post": {
            "summary": "Store a task definition YAML for CREATE TASK FROM",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {
                "200": {"description": "Stored",
                        "content": {"application/json": {"schema": _LINES}}},
                "401": {"description": "No client certificate",
                        "content": {"application/json": {"schema": _LINES}}},
                "413": {"description": "Too large",
                        "content": {"application/json": {"schema": _LINES}}},
                "422": {"description": "Not a form with a safe file name and UTF-8 text",
                        "content": {"application/json": {"schema": _LINES}}}}}},
        "/whoami": {"get": {
            "summary": "The caller's identity (certificate fingerprint and common name)",
            "responses": {"200": {"description": "The identity", "content": {
                "application/json": {"schema": {"type": "object", "properties": {
                    "IDENTITY": {"type": "string"}, "NAME": {"type": "string"}}}}}},
                "401": {"description": "No client certificate",
                        "content": {"application/json": {"schema": _LINES}}}}}},
    },
}
