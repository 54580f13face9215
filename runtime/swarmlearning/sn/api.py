"""The SN REST API (Starlette): one route table drives both the routing and the published
OpenAPI document. Handlers are plain functions run in the thread pool; chain calls block.

Who calls is known from the TLS connection, never from the request: an endpoint that acts for
nodes names them (`acts_for`), and the caller's certificate must be the identity that
registered each of them; registering binds a new UID to the caller's identity."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from swarmlearning import __version__, jsonbody
from swarmlearning.chain.rpc_client import RpcUnavailable
from swarmlearning.identity.principal import Principal
from swarmlearning.serve import peer_certificate
from swarmlearning.sn import routes as paths
from swarmlearning.sn.routes import Route as ApiRoute
from swarmlearning.sn.service import ServiceError, SwarmService

log = logging.getLogger("swarm.api")
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    """One route of the API (its path from `swarmlearning.sn.routes`) and what serves it."""

    route: ApiRoute
    summary: str
    handler: Callable[..., Any]
    status: int = 200
    # the node UIDs a request acts for; the caller must own each one
    acts_for: Callable[[dict[str, Any], dict[str, Any]], list[Any]] | None = None
    # the handler takes the caller's Principal as a third argument
    with_caller: bool = False

    @property
    def method(self) -> str:
        return self.route.method

    @property
    def path(self) -> str:
        return self.route.path


def _body(request: Request, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise ServiceError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw:
        return {}
    try:
        body = jsonbody.loads(raw)
    except jsonbody.TooDeep as exc:
        raise ServiceError(400, f"request body refused: {exc}") from None
    except ValueError as exc:
        raise ServiceError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ServiceError(400, "request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type = str, required: bool = True) -> Any:
    if name not in body or body[name] is None:
        if required:
            raise ServiceError(422, f"field {name!r} is required")
        return None
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ServiceError(422, f"field {name!r} must be a whole number")
    if kind is str and not isinstance(value, str):
        raise ServiceError(422, f"field {name!r} must be a string")
    if kind is list and not isinstance(value, list):
        raise ServiceError(422, f"field {name!r} must be a list")
    return value


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def endpoints(service: SwarmService, info: Callable[[], dict[str, Any]]) -> list[Endpoint]:
    """The API: (method, path, summary, handler(params, body))."""
    s = service
    return [
        Endpoint(paths.VERSION, "Version and identity of this SN", lambda p, b: info()),
        Endpoint(paths.NODES, "Active nodes (LIST NODES)", lambda p, b: s.list_nodes()),
        Endpoint(paths.REGISTER_NODE, "Register a node (SL, SWOP, SN) under its parent SN; "
                 "the UID is bound to the identity of the caller's certificate",
                 lambda p, b, caller: s.register_node(
                     _field(b, "uid"), _field(b, "node_type"), _field(b, "host"),
                     _field(b, "port", int), _field(b, "name", required=False) or "",
                     _field(b, "parent", required=False) or "",
                     _field(b, "taskrunner", required=False) or "", owner=caller),
                 201, with_caller=True),
        Endpoint(paths.NODES_ALIVE, "Report that nodes are alive (one batch per SN)",
                 lambda p, b: s.note_alive(_field(b, "uids", list)),
                 acts_for=lambda p, b: _list(b.get("uids"))),
        Endpoint(paths.DEREGISTER_NODE, "Mark a node as gone",
                 lambda p, b: s.deregister_node(p["uid"]) or {},
                 acts_for=lambda p, b: [p["uid"]]),
        Endpoint(paths.CONTRACTS, "Training contracts", lambda p, b: s.list_contracts()),
        Endpoint(paths.CREATE_CONTRACT, "Create a training contract",
                 lambda p, b: s.create_contract(_field(b, "name")), 201),
        Endpoint(paths.CONTRACT, "Training contract info",
                 lambda p, b: s.contract_info(p["name"])),
        Endpoint(paths.CONTRACT_STATUS, "Training contract state",
                 lambda p, b: s.contract_status(p["name"])),
        Endpoint(paths.PERFDATA, "Per-peer training progress",
                 lambda p, b: s.perfdata(p["name"])),
        Endpoint(paths.RESET_CONTRACT, "Reset a completed training contract",
                 lambda p, b: s.reset_contract(p["name"])),
        Endpoint(paths.ROUND,
                 "A sync round ('current' or a number): check-ins and merge; `wait` and `seen` "
                 "make it a long poll",
                 lambda p, b: s.sync_round(p["name"], p["round"], p.get("wait", 0),
                                           p.get("seen", ""))),
        Endpoint(paths.CHECKIN,
                 "Check an SL in for the current round (batched per SN)",
                 lambda p, b: s.checkin(p["name"], _field(b, "uid"), _field(b, "round", int),
                                        _field(b, "contribution"), _field(b, "weight", int),
                                        _field(b, "flags", int),
                                        _field(b, "min_peers", int, required=False) or 0),
                 acts_for=lambda p, b: [b.get("uid")]),
        Endpoint(paths.RECORD_MERGE, "Record a round's merged model (leader)",
                 lambda p, b: s.record_merge(p["name"], _field(b, "round", int),
                                             _field(b, "leader"), _field(b, "merged"),
                                             _field(b, "participants", list),
                                             bool(b.get("final")),
                                             _field(b, "rejected", list, required=False)),
                 acts_for=lambda p, b: [b.get("leader")]),
        Endpoint(paths.PROGRESS,
                 "Report loss, metric and epochs of an SL/ML pair (PERFDATA)",
                 lambda p, b: s.report_progress(p["name"], _field(b, "uid"),
                                                bool(b.get("leader")), b.get("loss", 0.0),
                                                b.get("metric", 0.0),
                                                _field(b, "total_epochs", int),
                                                _field(b, "completed_epochs", int)),
                 acts_for=lambda p, b: [b.get("uid")]),
        Endpoint(paths.TASKS, "Tasks, ROOTTASK first", lambda p, b: s.list_tasks()),
        Endpoint(paths.CREATE_TASK, "Create an empty task header",
                 lambda p, b: s.create_task(b), 201),
        Endpoint(paths.REGISTER_TASK,
                 "Register a task from a definition in HPE's task schema (header and body)",
                 lambda p, b: s.register_task(b), 201),
        Endpoint(paths.TASK, "Task header", lambda p, b: s.task_info(p["name"])),
        Endpoint(paths.DELETE_TASK, "Delete a task that is not finalized",
                 lambda p, b: s.delete_task(p["name"])),
        Endpoint(paths.TASK_BODY, "Task body lines, line 0 first",
                 lambda p, b: s.task_body(p["name"])),
        Endpoint(paths.SET_TASK_BODY_LINE, "Set one body line",
                 lambda p, b: s.append_task_body(p["name"], _field(b, "index", int),
                                                 _field(b, "line"))),
        Endpoint(paths.FINALIZE_TASK, "Finalize a task",
                 lambda p, b: s.finalize_task(p["name"])),
        Endpoint(paths.TASKRUNNERS, "Taskrunners", lambda p, b: s.list_taskrunners()),
        Endpoint(paths.CREATE_TASKRUNNER, "Create a taskrunner",
                 lambda p, b: s.create_taskrunner(_field(b, "name")), 201),
        Endpoint(paths.TASKRUNNER, "Taskrunner info",
                 lambda p, b: s.taskrunner_info(p["name"])),
        Endpoint(paths.ASSIGN_TASK, "Assign a finalized task",
                 lambda p, b: s.assign_task(p["name"], _field(b, "task"),
                                            peers=b.get("peers"),
                                            all_peers=bool(b.get("all_peers")),
                                            target=b.get("target"))),
        Endpoint(paths.TASKRUNNER_STATUS, "Taskrunner state and peers",
                 lambda p, b: s.taskrunner_status(p["name"])),
        Endpoint(paths.TASKRUNNER_PEERS, "Enrolled SWOPs",
                 lambda p, b: s.taskrunner_peers(p["name"])),
        Endpoint(paths.TASKRUNNER_PEER, "One enrolled SWOP",
                 lambda p, b: s.taskrunner_peer_status(p["name"], p["peer"])),
        Endpoint(paths.ENROLL, "Enroll a SWOP in the running task",
                 lambda p, b: s.enroll(p["name"], _field(b, "swop_uid"),
                                       _field(b, "group", required=False) or "",
                                       b.get("units", 1)),
                 acts_for=lambda p, b: [b.get("swop_uid")]),
        Endpoint(paths.REPORT_PEER_STATUS,
                 "Report an enrolled SWOP's status (RUNNING, COMPLETE, ERROR)",
                 lambda p, b: s.report(p["name"], p["peer"], _field(b, "status"),
                                       _field(b, "description", required=False) or "",
                                       _field(b, "detail", required=False) or ""),
                 acts_for=lambda p, b: [p["peer"]]),
        Endpoint(paths.RESET_TASKRUNNER, "Reset a taskrunner to idle",
                 lambda p, b: s.reset_taskrunner(p["name"])),
    ]


def openapi(table: list[Endpoint], title: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a route table."""
    paths: dict[str, Any] = {}
    for ep in table:
        params = [{"name": part[1:-1], "in": "path", "required": True,
                   "schema": {"type": "string"}}
                  for part in ep.path.split("/") if part.startswith("{")]
        operation: dict[str, Any] = {
            "summary": ep.summary, "parameters": params,
            "responses": {str(ep.status): {"description": "OK"},
                          "4XX": {"description": "Refused, with a reason in `detail`"}}}
        if ep.method == "POST":
            operation["requestBody"] = {"content": {"application/json": {
                "schema": {"type": "object"}}}}
        paths.setdefault(ep.path, {})[ep.method.lower()] = operation
    return {"openapi": "3.1.0", "info": {"title": title, "version": __version__},
            "paths": paths}


def build_app(table: list[Endpoint], title: str,
              authorize: Callable[[list[Any], Principal], None] | None = None,
              certificate_of: Callable[[dict[str, Any]], bytes | None] = peer_certificate
              ) -> Starlette:
    """A Starlette app serving a route table and its OpenAPI document. `authorize(uids,
    caller)` vets the endpoints that act for nodes; `certificate_of(scope)` is the client
    certificate of a request's connection (the TLS layer's record, unless a test says
    otherwise)."""
    import anyio.to_thread

    def call(ep: Endpoint, request: Request, params: dict[str, Any],
             body: dict[str, Any]) -> Any:
        if not (ep.with_caller or (ep.acts_for is not None and authorize is not None)):
            return ep.handler(params, body)
        der = certificate_of(request.scope)
        if der is None:
            raise ServiceError(403, "this request came without a client certificate")
        caller = Principal.of_der(der)
        if ep.acts_for is not None and authorize is not None:
            authorize(ep.acts_for(params, body), caller)
        return ep.handler(params, body, caller) if ep.with_caller else ep.handler(params, body)

    def bind(ep: Endpoint) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = _body(request, raw) if ep.method == "POST" else {}
                params = {**request.query_params, **request.path_params}
                result = await anyio.to_thread.run_sync(call, ep, request, params, body)
            except ServiceError as exc:
                return JSONResponse({"detail": exc.message}, status_code=exc.status)
            except RpcUnavailable as exc:
                # the chain (the sentinel, or an external node) is down or restarting: a
                # transient state that clients wait out, not an error of this request
                log.warning("%s %s: %s", ep.method, request.url.path, exc)
                return JSONResponse({"detail": f"the chain is unreachable from this SN ({exc}); "
                                               "retry shortly"},
                                    status_code=503, headers={"Retry-After": "1"})
            except Exception as exc:  # noqa: BLE001 - the client gets a reason, the log the trace
                log.exception("%s %s failed", ep.method, request.url.path)
                return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"},
                                    status_code=500)
            return JSONResponse(result, status_code=ep.status)
        return endpoint

    document = openapi(table, title)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route(ep.path, bind(ep), methods=[ep.method]) for ep in table]
    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    async def refused(request: Request, exc: Exception) -> Response:
        # the router's own refusals (no such route, wrong method) also answer with a reason
        status = getattr(exc, "status_code", 400)
        reason = {404: f"no such route: {request.url.path} (GET /openapi.json lists them)",
                  405: f"{request.method} is not allowed on {request.url.path}"}
        return JSONResponse({"detail": reason.get(status, str(getattr(exc, "detail", exc)))},
                            status_code=status)

    return Starlette(routes=routes, exception_handlers={HTTPException: refused})
