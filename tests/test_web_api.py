"""The SWCI web API in process: HPE's wire format, one session per client certificate, safe
uploads, waits that block nobody else, and no server error or traceback for any input
(hypothesis and schemathesis). The TLS layer itself is tested with real processes in
test_web_server.py; here the certificate comes from a test header."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from swci.interpreter import Interpreter, SessionState
from swci.network import NetworkError
from swci.web.app import OPENAPI, build_app
from swci.web.sessions import Sessions

from .conftest import FakeNetwork

TASK = """\
Name: web_task
TaskType: MAKE_USER_CONTAINER
Author: tests
Prereq: ROOTTASK
Outcome: web-image
Body:
    BuildContext: ~
    BuildType: INLINE
    BuildSteps:
    - RUN pip install six
"""


def certificate_from_header(scope: dict[str, Any]) -> bytes | None:
    """Unit tests name their identity in a header; the real server reads the TLS connection."""
    for name, value in scope.get("headers", []):
        if name == b"x-test-identity":
            return value
    return None


class Offline:
    """Interpreters whose networks are in-memory fakes, and whose sleeps are short."""

    def __init__(self) -> None:
        self.networks: dict[str, FakeNetwork] = {}

    def __call__(self, state: SessionState) -> Interpreter:
        def factory(host: str, port: int) -> FakeNetwork:
            if host not in ("127.0.0.1", "localhost"):
                raise NetworkError(f"tests reach no network: {host}")
            return self.networks.setdefault(f"{host}:{port}", FakeNetwork(f"{host}:{port}"))

        return Interpreter(state, client_factory=factory,
                           sleep=lambda seconds: time.sleep(min(seconds, 2.0)))


@pytest.fixture
def app(tmp_path: Path):  # noqa: ANN201
    usr = tmp_path / "usr"
    usr.mkdir()
    return build_app(Sessions(tmp_path / "web", usr_dir=usr, make_interpreter=Offline()),
                     certificate_from_header, max_upload=4096)


def client(app, identity: str | None = "alice") -> httpx.AsyncClient:  # noqa: ANN001
    headers = {"x-test-identity": identity} if identity else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://swci.test", headers=headers)


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


async def execute(app, command: str, identity: str = "alice") -> dict[str, Any]:  # noqa: ANN001
    async with client(app, identity) as web:
        response = await web.post("/exec", params={"cmd": command})
        assert response.status_code == 200, response.text
        return response.json()


def test_exec_speaks_hpes_wire_format(app) -> None:  # noqa: ANN001
    reply = run(execute(app, "CREATE CONTEXT lab WITH IP 127.0.0.1"))
    assert reply["CONTENT"] == ["API Server is UP!", "CONTEXT CREATED : lab"]
    reply = run(execute(app, "LIST CONTEXTS"))
    assert reply["DATA"]["contexts"] == [{"name": "lab", "host": "127.0.0.1", "port": 30304,
                                         "service": None, "current": False}]
    reply = run(execute(app, "GET TASK INFO nothing"))
    assert reply["CONTENT"][0].startswith("ERROR : No context is set")
    reply = run(execute(app, "bogus words"))
    assert reply["CONTENT"] == ["ERROR : syntax error at column 1: unexpected 'bogus': not a "
                                "command (HELP lists them)"]


def test_each_certificate_has_its_own_session(app, tmp_path: Path) -> None:  # noqa: ANN001
    run(execute(app, "CREATE CONTEXT a-lab WITH IP 127.0.0.1", "alice"))
    run(execute(app, "SWITCH CONTEXT a-lab", "alice"))
    run(execute(app, "cd /tmp", "alice"))
    assert run(execute(app, "LIST CONTEXTS", "bob"))["DATA"]["contexts"] == []
    assert run(execute(app, "pwd", "bob"))["CONTENT"] == [str(tmp_path / "usr")]
    assert run(execute(app, "pwd", "alice"))["CONTENT"] == ["/tmp"]
    assert [c["current"] for c in run(execute(app, "LIST CONTEXTS"))["DATA"]["contexts"]] == [
        True]


def test_uploads_are_found_by_create_task_from_and_kept_apart(app) -> None:  # noqa: ANN001
    async def scenario() -> None:
        async with client(app) as web:
            reply = await web.post("/uploadTaskDef", files={"file": ("web_task.yaml", TASK)})
            assert reply.json() == {"CONTENT": ["TASK DEFINITION UPLOADED : web_task.yaml"],
                                    "DATA": {"uploaded": "web_task.yaml"}}
        await execute(app, "CREATE CONTEXT lab WITH IP 127.0.0.1")
        await execute(app, "SWITCH CONTEXT lab")
        found = await execute(app, "CREATE TASK FROM web_task.yaml")
        assert found["CONTENT"][0] == "Task definition is valid"
        other = await execute(app, "CREATE TASK FROM web_task.yaml", "bob")
        assert other["CONTENT"][0].startswith("ERROR : Cannot read task definition")

    run(scenario())


@pytest.mark.parametrize(("name", "content", "status", "message"), [
    ("../escape.yaml", TASK, 422, "is not allowed"),
    ("/etc/passwd", TASK, 422, "is not allowed"),
    ("dir/task.yaml", TASK, 422, "is not allowed"),
    (".hidden.yaml", TASK, 422, "is not allowed"),
    ("big.yaml", "x" * 5000, 413, "larger than 4096 bytes"),
    ("binary.yaml", b"\xff\xfe\x00", 422, "is not UTF-8 text"),
])
def test_unsafe_uploads_are_refused(app, tmp_path: Path, name: str, content: Any,  # noqa: ANN001
                                    status: int, message: str) -> None:
    async def scenario() -> httpx.Response:
        async with client(app) as web:
            return await web.post("/uploadTaskDef", files={"file": (name, content)})

    response = run(scenario())
    assert response.status_code == status
    assert message in response.json()["CONTENT"][0]
    stored = [p.name for p in (tmp_path / "web").rglob("*") if p.is_file()]
    assert stored == []


def test_requests_without_identity_or_command_are_refused(app) -> None:  # noqa: ANN001
    async def scenario() -> list[httpx.Response]:
        async with client(app, None) as anonymous, client(app) as web:
            return [await anonymous.post("/exec", params={"cmd": "LIST CONTEXTS"}),
                    await web.post("/exec"),
                    await web.post("/exec", params={"cmd": "LIST TASKS\nSTOP SWARM"}),
                    await web.post("/uploadTaskDef", data={"other": "x"}),
                    await web.get("/exec"),
                    await web.get("/nowhere")]

    statuses = [(r.status_code, r.json()["CONTENT"][0]) for r in run(scenario())]
    assert [s for s, _ in statuses] == [401, 422, 422, 422, 405, 404]
    assert all(text.startswith("ERROR : ") for _, text in statuses)


def test_a_long_wait_blocks_no_one_else(app) -> None:  # noqa: ANN001
    async def scenario() -> tuple[float, float]:
        async with client(app, "alice") as alice, client(app, "bob") as bob:
            sleeping = asyncio.create_task(alice.post("/exec", params={"cmd": "SLEEP 1.5"}))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await bob.post("/exec", params={"cmd": "LIST CONTEXTS"})
            other = time.monotonic() - started
            started = time.monotonic()
            await alice.post("/exec", params={"cmd": "LIST CONTEXTS"})
            same = time.monotonic() - started
            await sleeping
            return other, same

    other, same = run(scenario())
    assert other < 1.0 and same < 1.0


def test_concurrent_commands_of_one_session_all_land(app) -> None:  # noqa: ANN001
    before = threading.active_count()  # threads other tests of this process left running

    async def scenario() -> dict[str, Any]:
        async with client(app) as web:
            await asyncio.gather(*[web.post("/exec", params={
                "cmd": f"CREATE CONTEXT c{i} WITH IP 127.0.0.1"}) for i in range(24)])
        return await execute(app, "LIST CONTEXTS")

    names = {c["name"] for c in run(scenario())["DATA"]["contexts"]}
    assert names == {f"c{i}" for i in range(24)}
    assert threading.active_count() - before < 40  # not a thread per command


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(command=st.text(max_size=200))
def test_any_command_text_gets_a_clean_answer(app, command: str) -> None:  # noqa: ANN001
    async def scenario() -> httpx.Response:
        async with client(app) as web:
            return await web.post("/exec", params={"cmd": command})

    response = run(scenario())
    assert response.status_code in (200, 422)
    body = response.json()
    assert isinstance(body["CONTENT"], list) and all(isinstance(x, str) for x in body["CONTENT"])
    assert "Traceback" not in response.text


def test_openapi_is_published(app) -> None:  # noqa: ANN001
    async def scenario() -> dict[str, Any]:
        async with client(app, None) as web:
            return (await web.get("/openapi.json")).json()

    assert run(scenario()) == OPENAPI
    assert set(OPENAPI["paths"]) == {"/exec", "/uploadTaskDef", "/whoami"}


# schemathesis needs the schema when the module loads: its app gets a directory of its own
_SCHEMA_ROOT = Path(tempfile.mkdtemp(prefix="swci-schemathesis-"))
atexit.register(shutil.rmtree, _SCHEMA_ROOT, ignore_errors=True)
(_SCHEMA_ROOT / "usr").mkdir()
schema = schemathesis.openapi.from_asgi("/openapi.json", build_app(
    Sessions(_SCHEMA_ROOT / "web", usr_dir=_SCHEMA_ROOT / "usr", make_interpreter=Offline()),
    lambda scope: b"schemathesis"))


@schema.parametrize()
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_schemathesis_finds_no_server_error(case) -> None:  # noqa: ANN001
    response = case.call()
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    # the schema cannot say which text is a command, a safe file name or UTF-8: a 422 for
    # schema-valid data is the server's right
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
