"""Swci: the SWCI web client of HPE's wheel, for programs written against it. Each method sends
one SWCI command to `swci serve` (POST /exec?cmd=...) and returns the reply's output lines; a
failed command returns [] and getErrors() says why."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import httpx

from swarmlearning.swci import topology, transport

DEFAULT_TASKRUNNER = "defaulttaskbb.taskdb.sml.hpe"
DEFAULT_CONTRACT = "defaultbb.cqdb.sml.hpe"
DEFAULT_SN_API_PORT = 30304
DEFAULT_WEB_PORT = 30306

LOGGER_NAME = "swci-web"
LOG_FILE_ENV = "SWCI_WEB_LOG"  # the default logger's file; empty: console only
DEFAULT_LOG_FILE = "swci-web.log"
_OUR_HANDLER = "_swarmlearning_swci_handler"

MAX_WAIT_ENV = ("SWCI_RUN_TASK_MAX_WAIT_TIME", "SWCI_TASK_MAX_WAIT_TIME")  # minutes
DEFAULT_MAX_WAIT_MINUTES = 120.0
MIN_POLL_SECONDS = 1.0
DONE_STATES = ("COMPLETE", "ERROR", "IDLE")
RULE = "=" * 40

# Replaced by tests, so polling runs without waiting.
_sleep = time.sleep
_monotonic = time.monotonic


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


_K = SwciCacheKey


def _default_logger(level: int | str) -> logging.Logger:
    """The 'swci-web' logger writing to the console and to SWCI_WEB_LOG (default swci-web.log).
    Handlers this module added before are replaced, so repeated clients do not repeat lines."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, _OUR_HANDLER, False):
            logger.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    log_file = os.environ.get(LOG_FILE_ENV, DEFAULT_LOG_FILE)
    if log_file:
        handlers.append(logging.FileHandler(log_file, delay=True))
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _OUR_HANDLER, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def _level(value: int | str) -> int:
    """A logging level from logging.INFO-style numbers or 'INFO'-style names; WARNING otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value in (logging.CRITICAL, logging.ERROR, logging.WARNING,
                                  logging.INFO, logging.DEBUG) else logging.WARNING
    names = {"CRITICAL": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
             "INFO": logging.INFO, "DEBUG": logging.DEBUG}
    return names.get(str(value).strip().upper(), logging.WARNING)


def _field(lines: Sequence[str], name: str) -> str | None:
    """The value of the first 'NAME : value' line naming `name`."""
    for line in lines:
        if name in line and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def _max_wait_minutes(logger: logging.Logger) -> float:
    for name in MAX_WAIT_ENV:
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if value > 0:
            return value
        logger.warning("%s=%r is not a positive number of minutes; ignored", name, raw)
    return DEFAULT_MAX_WAIT_MINUTES


class Swci:
    """A client of the SWCI web API (`swci serve`, HPE's SWCI_MODE=WEB), with HPE's methods."""

    def __init__(self, swciIp: str, port: int = DEFAULT_WEB_PORT,
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
            self._logger = _default_logger(_level(logLv))
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
            verify = transport.tls_context(clientCert, clientPKey, clientCABundle, self._logger)
        else:
            self._logger.warning("No clientCert given: connecting over plain HTTP as HPE's "
                                 "client does; a server that requires mutual TLS refuses this")
        self._secure = secure
        base = transport.base_url(str(swciIp).strip(), port, secure)
        self._exec_url = f"{base}/exec"
        self._upload_url = f"{base}/uploadTaskDef"
        self._http = transport.http_client(verify, _transport)
        self._timeout = transport.command_timeout(self._logger)
        self._logger.info("SWCI URL prefix = %s?cmd=", self._exec_url)

        self._enable_caching = bool(enableCaching)
        self._cache: dict[str, list[str]] = {}
        self._error: list[str] | None = None

    # -- local -------------------------------------------------------------------------------------

    def setLogLevel(self, logLv: int | str) -> None:
        """Set the logger's level: logging.DEBUG ... logging.CRITICAL, or their names."""
        self._logger.setLevel(_level(logLv))

    def getErrors(self) -> str | None:
        """The error of the last command (its ERROR line), or None when it succeeded."""
        return "\n".join(self._error) if self._error else None

    def clearCache(self) -> None:
        """Forget every cached reply."""
        self._cache.clear()

    def close(self) -> None:
        """Close the HTTP connections (not part of HPE's API)."""
        self._http.close()

    def __enter__(self) -> Swci:
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
                                    timeout=transport.request_timeout(read_timeout
                                                                      or self._timeout))
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

    # -- session -----------------------------------------------------------------------------------

    def ls(self, optStr: str = "") -> list[str]:
        """List a directory of the SWCI server (`ls [options and paths]`)."""
        return self._exec(f"ls {optStr}" if optStr else "ls")

    def pwd(self) -> list[str]:
        """The SWCI server's working directory."""
        return self._exec("pwd")

    def cd(self, dirPath: str) -> list[str]:
        """Change the SWCI server's working directory."""
        return self._exec(f"cd {dirPath}")

    def sleep(self, sleepTime: float) -> list[str]:
        """Make the SWCI server sleep (`sleep <seconds>`); the reply may take that long."""
        try:
            read = float(sleepTime) + self._timeout
        except (TypeError, ValueError):
            read = None
        return self._exec(f"sleep {sleepTime}", read_timeout=read)

    def listNodes(self) -> list[str]:
        """LIST NODES: a header line, then one comma-separated line per node (never cached)."""
        return self._exec("list Nodes")

    # -- contexts ----------------------------------------------------------------------------------

    def createContext(self, ctxName: str, ip: str | None = None,
                      port: int = DEFAULT_SN_API_PORT, service: str | None = None) -> list[str]:
        """Create a context for an SN API server given by ip (and port) or by service
        (host[:port], for a reverse proxy); one of the two is required."""
        if ip is None and service is None:
            raise RuntimeError("For creating context either IP or Service name is mandatory!")
        if ip is not None:
            command = f"create context {ctxName} with ip {ip} {int(port)}"
        else:
            command = f"create context {ctxName} with service {service}"
        result = self._exec(command)
        self._forget(_K.LIST_CONTEXT.value, _K.GET_CONTEXT_INFO.value + str(ctxName))
        return result

    def switchContext(self, ctxName: str) -> list[str]:
        """Make ctxName the current context. Every cached reply is dropped: the contracts, tasks
        and taskrunners seen so far belong to the previous context's network."""
        result = self._exec(f"switch context {ctxName}")
        self.clearCache()
        return result

    def listContexts(self) -> list[str]:
        """The contexts of this SWCI session (cached)."""
        return self._exec(_K.LIST_CONTEXT.value, cache=True)

    def getContextInfo(self, ctxName: str) -> list[str]:
        """A context's information (cached)."""
        return self._exec(_K.GET_CONTEXT_INFO.value + str(ctxName), cache=True)

    # -- training contracts ------------------------------------------------------------------------

    def createTrainingContract(self, ctName: str) -> list[str]:
        """Register a training contract."""
        result = self._exec(f"create contract {ctName}")
        self._forget(_K.LIST_CONTRACTS.value, _K.GET_CONTRACT_INFO.value + str(ctName))
        return result

    def listTrainingContracts(self) -> list[str]:
        """The training contracts (cached)."""
        return self._exec(_K.LIST_CONTRACTS.value, cache=True)

    def getTrainingContractInfo(self, ctName: str) -> list[str]:
        """A training contract's static information (cached)."""
        return self._exec(_K.GET_CONTRACT_INFO.value + str(ctName), cache=True)

    def getTrainingContractStatus(self, ctName: str) -> list[str]:
        """A training contract's current state."""
        return self._exec(f"get contract status {ctName}")

    def getTrainingContractPerformanceData(
            self, ctName: str = DEFAULT_CONTRACT) -> list[str]:
        """Per SL-ML pair of a training: leader status, loss, metric, epochs (`perfdata`)."""
        return self._exec(f"perfdata {ctName}")

    def resetTrainingContract(self, ctName: str = DEFAULT_CONTRACT) -> list[str]:
        """Return a completed training contract to its initial state."""
        result = self._exec(f"reset contract {ctName}")
        self._forget(_K.LIST_CONTRACTS.value, _K.GET_CONTRACT_INFO.value + str(ctName))
        return result

    # -- tasks -------------------------------------------------------------------------------------

    def _forget_task(self, taskName: str) -> None:
        self._forget(_K.LIST_TASKS.value, _K.GET_TASK_INFO.value + taskName,
                     _K.GET_TASK_BODY.value + taskName)

    def createTaskFrom(self, yamlFileName: str | os.PathLike[str]) -> list[str]:
        """Create a task from a task definition YAML file on the SWCI server (see
        uploadTaskDefintion)."""
        result = self._exec(f"create task from {yamlFileName}")
        self._forget(_K.LIST_TASKS.value)
        name = _field(result, "Task Registered")
        if name:
            self._forget_task(name)
        return result

    def registerTask(self, yamlFileName: str | os.PathLike[str],
                     finalize: bool = True) -> list[str]:
        """Create a task from a YAML file and finalize it: ['Registered Task : <name>'], or []
        on failure. Without finalize (or when no task name is reported), the create output."""
        result = self.createTaskFrom(yamlFileName)
        if not result:
            return result
        name = _field(result, "Task Registered")
        if not (finalize and name):
            return result
        if not self.finalizeTask(name):
            return []
        return [f"Registered Task : {name}"]

    def finalizeTask(self, taskName: str) -> list[str]:
        """Finalize a task; its body cannot change afterwards."""
        result = self._exec(f"finalize task {taskName}")
        self._forget_task(str(taskName))
        return result

    def deleteTask(self, taskName: str) -> list[str]:
        """Delete a task that is not finalized."""
        result = self._exec(f"delete task {taskName}")
        self._forget_task(str(taskName))
        return result

    def getTaskInfo(self, taskName: str) -> list[str]:
        """A task's information (cached)."""
        return self._exec(_K.GET_TASK_INFO.value + str(taskName), cache=True)

    def getTaskBody(self, taskName: str) -> list[str]:
        """A task's body (cached)."""
        return self._exec(_K.GET_TASK_BODY.value + str(taskName), cache=True)

    def listTasks(self) -> list[str]:
        """The registered tasks (cached)."""
        return self._exec(_K.LIST_TASKS.value, cache=True)

    def uploadTaskDefintion(self, taskFilePath: str | os.PathLike[str]) -> str:
        """Upload a local task definition YAML file to the SWCI server; the server's reply text.
        RuntimeError when the file does not exist or the upload cannot be sent. (The name's
        spelling is HPE's; uploadTaskDefinition is the same method.)"""
        path = Path(taskFilePath).expanduser().resolve()
        if not path.is_file():
            raise RuntimeError(f"Task definition file not found : {path}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RuntimeError(f"Task definition file cannot be read : {path} "
                               f"({exc.strerror or exc})") from exc
        try:
            reply = self._http.post(self._upload_url,
                                    files={"file": (path.name, data, "application/x-yaml")},
                                    timeout=transport.request_timeout(transport.UPLOAD_TIMEOUT))
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

    uploadTaskDefinition = uploadTaskDefintion

    # -- taskrunners -------------------------------------------------------------------------------

    def listTaskRunners(self) -> list[str]:
        """The registered taskrunners (cached)."""
        return self._exec(_K.LIST_TASKRUNNERS.value, cache=True)

    def getTaskRunnerInfo(self, trName: str) -> list[str]:
        """A taskrunner's static information (cached)."""
        return self._exec(_K.GET_TASKRUNNER_INFO.value + str(trName), cache=True)

    def _forget_runner(self, trName: str) -> None:
        self._forget(_K.LIST_TASKRUNNERS.value, _K.GET_TASKRUNNER_INFO.value + trName)

    def assignTask(self, taskName: str, trName: str, peers: int) -> list[str]:
        """Assign a finalized task to a taskrunner, to run once `peers` peers join."""
        result = self._exec(f"assign task {taskName} to {trName} with {int(peers)} peers")
        self._forget_runner(str(trName))
        self._forget(_K.LIST_TASKS.value, _K.GET_TASK_INFO.value + str(taskName))
        return result

    def getTaskRunnerStatus(self, trName: str) -> list[str]:
        """A taskrunner's current task, its state (TASK_STATE line) and its peers."""
        return self._exec(f"get taskrunner status {trName}")

    def getTaskRunnerPeerStatus(self, trName: str, idx: int) -> list[str]:
        """The status of peer number idx (from 0) of a taskrunner's current task."""
        return self._exec(f"get taskrunner peer status {trName} {int(idx)}")

    def resetTaskRunner(self, trName: str = DEFAULT_TASKRUNNER) -> list[str]:
        """Return a taskrunner to its initial state (only after its task is over)."""
        result = self._exec(f"reset taskrunner {trName}")
        self._forget_runner(str(trName))
        return result

    def isTaskDone(self, trName: str) -> bool:
        """True when the taskrunner's TASK_STATE is COMPLETE, ERROR or IDLE. RuntimeError, with
        the server's error, when the status cannot be read."""
        status = self.getTaskRunnerStatus(trName)
        if not status:
            raise RuntimeError(self.getErrors() or
                               f"ERROR : no status for taskrunner {trName}")
        state = _field(status, "TASK_STATE")
        return state is not None and state.upper() in DONE_STATES

    def executeTask(self, taskName: str, tr: str = DEFAULT_TASKRUNNER,
                    peers: int = 1, pollWaitInSec: float = 120,
                    resetTROnSuccess: bool = True) -> list[str]:
        """Assign a task, poll the taskrunner every pollWaitInSec seconds until the task is over
        (at most SWCI_RUN_TASK_MAX_WAIT_TIME minutes, default 120), print the taskrunner's
        status and each peer's, and reset the taskrunner when the task completed. Returns the
        printed lines ([] when the task could not be assigned); after a timeout getErrors()
        says so and the taskrunner is left as it is."""
        if not self.assignTask(taskName, tr, peers):
            self._logger.error("Could not assign task %s on %s", taskName, tr)
            return []
        print(f"Assigned task {taskName} on {tr} for execution")
        poll = max(float(pollWaitInSec), MIN_POLL_SECONDS)
        limit = _max_wait_minutes(self._logger)
        deadline = _monotonic() + limit * 60
        timed_out = False
        done = self.isTaskDone(tr)
        while not done:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                timed_out = True
                break
            print(f"Waiting for task {taskName} to complete")
            _sleep(min(poll, remaining))
            done = self.isTaskDone(tr)

        lines = self.getTaskRunnerStatus(tr)
        state = (_field(lines, "TASK_STATE") or "").upper()
        lines.append(RULE)
        for idx in range(int(peers)):
            lines.extend(self.getTaskRunnerPeerStatus(tr, idx))
            lines.append(RULE)
        for line in lines:
            print(line)
        self._forget_runner(str(tr))
        if timed_out:
            message = (f"ERROR : Task {taskName} on {tr} did not finish within {limit:g} mins "
                       f"(state {state or 'unknown'}); the taskrunner was not reset")
            print(message)
            self._fail(message)
        elif resetTROnSuccess and state == "COMPLETE":
            if not self.resetTaskRunner(tr):
                self._logger.warning("Could not reset taskrunner %s: %s", tr, self.getErrors())
        return lines

    # -- topology ----------------------------------------------------------------------------------

    def plotTopology(self, SNColour: str = "#ADD8E6", SWOPColor: str = "#33FF33",
                     SLColor: str = "#FFCCCB", attrs: Sequence[str] = (),
                     *, path: str | os.PathLike[str] | None = None) -> str | None:
        """Draw the swarm (LIST NODES) as a graph, each SL and SWOP joined to its SN, into a PNG:
        `path`, default swci-topology.png in the current directory. Labels show the node type
        and host IP plus the columns named in attrs (Port, ContainerName, UUID, ParentUUID,
        i-am-alive). Returns the PNG's path, or None when LIST NODES fails (see getErrors).
        Needs networkx and matplotlib (ImportError naming the pip command otherwise)."""
        topology.require_plotting()
        extra = topology.label_columns(attrs)
        lines = self.listNodes()
        if not lines:
            return None
        graph = topology.build_graph(topology.parse_nodes(lines), SNColour, SWOPColor, SLColor,
                                     extra)
        target = topology.draw_png(graph, topology.DEFAULT_FILE if path is None else path)
        self._logger.info("Topology written to %s", target)
        return str(target)


swci = Swci
