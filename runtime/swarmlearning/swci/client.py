"""Swci: the SWCI web client of HPE's wheel, for programs written against it. Each method sends
one SWCI command to `swci serve` (POST /exec?cmd=...) through the SwciSession it builds on and
returns the reply's output lines; a failed command returns [] and getErrors() says why."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from swarmlearning.defaults import (
    DEFAULT_CONTRACT,
    DEFAULT_TASKRUNNER,
    SN_API_PORT,
    SWCI_WEB_PORT,
)
from swarmlearning.states import TERMINAL_RUNNER_STATES
from swarmlearning.swci.session import SwciCacheKey, SwciSession
from swarmlearning.swci.topology import DEFAULT_FILE as DEFAULT_TOPOLOGY_FILE
from swarmlearning.swci.topology import (
    build_graph,
    draw_png,
    label_columns,
    parse_nodes,
    require_plotting,
)
from swarmlearning.swci.weblog import HANDLER_MARK
from swarmlearning.swci.weblog import LOGGER_NAME as LOGGER_NAME

# The names these facts had here before they were written once in swarmlearning.defaults,
# swarmlearning.states and swarmlearning.swci.weblog (LOGGER_NAME too, imported above).
DEFAULT_SN_API_PORT = SN_API_PORT
DEFAULT_WEB_PORT = SWCI_WEB_PORT
DONE_STATES = TERMINAL_RUNNER_STATES
_OUR_HANDLER = HANDLER_MARK

MAX_WAIT_ENV = ("SWCI_RUN_TASK_MAX_WAIT_TIME", "SWCI_TASK_MAX_WAIT_TIME")  # minutes
DEFAULT_MAX_WAIT_MINUTES = 120.0
MIN_POLL_SECONDS = 1.0
RULE = "=" * 40

# Replaced by tests, so polling runs without waiting.
_sleep = time.sleep
_monotonic = time.monotonic

_K = SwciCacheKey


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


class Swci(SwciSession):
    """A client of the SWCI web API (`swci serve`, HPE's SWCI_MODE=WEB), with HPE's methods."""

    # -- the server's shell ---------------------------------------------------------------------

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
                      port: int = SN_API_PORT, service: str | None = None) -> list[str]:
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
        return self._upload(path)

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
        return state is not None and state.upper() in TERMINAL_RUNNER_STATES

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
        require_plotting()
        extra = label_columns(attrs)
        lines = self.listNodes()
        if not lines:
            return None
        graph = build_graph(parse_nodes(lines), SNColour, SWOPColor, SLColor, extra)
        target = draw_png(graph, DEFAULT_TOPOLOGY_FILE if path is None else path)
        self._logger.info("Topology written to %s", target)
        return str(target)


swci = Swci


swci = Swci
