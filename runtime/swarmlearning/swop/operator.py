"""The SWOP daemon: registers with its SN, watches its profile's taskrunner, enrolls in the task
assigned there (one task at a time), runs it with its runtime and reports each step to the
chain. RESET TASKRUNNER (a new taskrunner generation) stops and cleans up what the task started.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from swarmlearning import __version__
from swarmlearning.defaults import READY_LINES, ROOT_TASK, NodeKind
from swarmlearning.identity.tls import client_context
from swarmlearning.nodes.uid import node_uid
from swarmlearning.schemas import parse_task_body
from swarmlearning.sn.client import STOP_RETRY_SECONDS, SNClient, SNError
from swarmlearning.swop.config import SwopConfig
from swarmlearning.swop.processes import ChildRegistry
from swarmlearning.swop.runtimes.process import safe_name
from swarmlearning.swop.sandbox import clear_task_dir
from swarmlearning.swop.tasks import (
    DESCRIPTION_LIMIT,
    DETAIL_LIMIT,
    Runtime,
    TaskContext,
    TaskDefinition,
    TaskFailed,
    clip,
)

log = logging.getLogger("swarm.swop")
READY_LINE = READY_LINES[NodeKind.SWOP]
PROGRESS_SECONDS = 5.0
OPERATIONS = {"MAKE_USER_CONTAINER": "build_user_container", "PULL_IMAGE": "pull_image",
              "MAKE_SWARM_USER_CONTENT": "make_content", "RUN_SWARM": "run_swarm"}


class TaskUnreadable(ValueError):
    """A task's body cannot be read back from the chain (it is not HPE's task YAML)."""


def read_task(sn: SNClient, name: str) -> TaskDefinition:
    """A task's header and body from the chain, the body read as HPE's task YAML."""
    info = sn.task_info(name)
    lines = sn.task_body(name)
    try:
        body = parse_task_body(lines[1:]) if len(lines) > 1 else {}
    except yaml.YAMLError as exc:
        raise TaskUnreadable(f"task {name}: its body is not YAML "
                             f"({str(exc).splitlines()[0]})") from None
    except (RecursionError, ValueError) as exc:  # nested too deep, a number too long
        raise TaskUnreadable(f"task {name}: its body cannot be read "
                             f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(body, dict):
        raise TaskUnreadable(f"task {name}: its body is not a mapping of HPE's task fields")
    return TaskDefinition(name=info["NAME"], task_type=info["TYPE"], author=info["AUTHOR"],
                          prereq=info["PREREQ"], outcome=info["OUTCOME"], body=body)


def send_report(sn: SNClient, runner: str, uid: str, status: str, description: str,
                detail: str = "") -> None:
    """This SWOP's status in its taskrunner, with the texts clipped to what the chain keeps."""
    sn.report(runner, uid, status, clip(description, DESCRIPTION_LIMIT),
              clip(detail, DETAIL_LIMIT))


@dataclass
class Job:
    """One task this SWOP enrolled in, run on its own thread until the taskrunner resets."""

    generation: int
    task: TaskDefinition
    ctx: TaskContext
    runtime: Runtime
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    failed: bool = False
    progress_text: str = ""
    progress_sent: float = 0.0
    unsent: tuple[str, str, str] | None = None  # a final report the SN has not taken yet
    lock: threading.Lock = field(default_factory=threading.Lock)


class SwarmOperator:
    """One SWOP process."""

    def __init__(self, config: SwopConfig, make_runtime: Callable[[], Runtime]) -> None:
        self.config = config
        self.make_runtime = make_runtime
        self.runtime_name = str(getattr(make_runtime, "name", "process"))
        self.profile = config.profile
        self.runner = self.profile.taskrunner
        self.uid = node_uid(config.data_dir)
        self.stop = threading.Event()
        tls = client_context(config.identity)
        self.sn = SNClient(config.sn_ip, config.sn_api_port, tls)
        self.job_sn = SNClient(config.sn_ip, config.sn_api_port, tls)
        self.job: Job | None = None
        self.ending: list[Job] = []  # reset jobs whose cleanup outlived the join
        self.children = ChildRegistry(config.data_dir / "children")
        self.declined: dict[tuple[int, str], str] = {}
        self.finished: set[tuple[int, str]] = set()
        self.last_update = ""

    # -- life --------------------------------------------------------------------------------------

    def run(self) -> int:
        cfg = self.config
        log.info("## SWARM OPERATOR ## uid %s, SN %s:%s, runtime %s, version %s", self.uid,
                 cfg.sn_ip, cfg.sn_api_port, self.runtime_name, __version__)
        reaped = self.children.reap_leftovers()
        if reaped:
            log.warning("Stopped %d process group(s) a previous run of this SWOP left behind",
                        len(reaped))
        sn_info = self.sn.version()
        self.sn.register(self.uid, cfg.host_ip, 0, cfg.name, sn_info["NODE_UID"],
                         node_type="SWOP", taskrunner=self.runner)
        self.sn.taskrunner_status(self.runner)  # the taskrunner must exist: say so now, not later
        heartbeat = threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat")
        heartbeat.start()
        log.info("Registered with SN %s as %s (group %s)", sn_info["NODE_UID"], cfg.name,
                 self.profile.groupname)
        log.info("%s%s", READY_LINE, self.runner)
        try:
            while not self.stop.is_set():
                try:
                    self._tick()
                except SNError as exc:
                    log.warning("Taskrunner %s: %s", self.runner, exc)
                except Exception:  # a bug must not take the SWOP down: say it, go on
                    log.exception("Watching taskrunner %s failed", self.runner)
                self.stop.wait(cfg.poll_seconds)
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        # a stopping SWOP tries an SN that does not answer for a few seconds, not a minute
        for client in (self.sn, self.job_sn):
            client.stop_retrying_after(STOP_RETRY_SECONDS)
        for ending in self.ending:
            if ending.thread is not None:
                ending.thread.join(timeout=60)
        job = self.job
        if job is not None:
            if not job.done.is_set():
                self._report(job, "ERROR", f"SWOP {self.config.name} was stopped during the "
                                           "task")
            self._end(job)
        try:
            self.sn.deregister(self.uid)
        except SNError as exc:
            log.warning("Could not mark this SWOP as gone: %s", exc)
        self.sn.close()
        self.job_sn.close()
        log.info("SWOP stopped")

    def _heartbeat(self) -> None:
        while not self.stop.wait(self.config.heartbeat_seconds):
            try:
                self.sn.alive(self.uid)
            except SNError as exc:
                log.warning("Liveness report failed: %s", exc)

    # -- watching the taskrunner -------------------------------------------------------------------

    def _tick(self) -> None:
        self.ending = [j for j in self.ending if j.thread is not None and j.thread.is_alive()]
        status = self.sn.taskrunner_status(self.runner)
        generation = int(status.get("GENERATION", 0))
        state = str(status.get("TASK_STATE", ""))
        task = str(status.get("TASK", ""))
        updated = str(status.get("UPDATE_TS", ""))
        job = self.job
        if job is not None:
            if job.generation != generation or state == "IDLE" or task != job.task.name:
                log.info("Taskrunner %s was reset: stopping task %s", self.runner,
                         job.task.name)
                self._end(job)
                return
            self._flush_progress(job)
            self._resend(job)
            if job.done.is_set() and job.failed and state == "RUNNING":
                mine = self.sn.taskrunner_peer_status(self.runner, self.uid)
                if mine.get("SWOP_PEER_STATUS") == "ENROLLED":
                    log.info("Task %s: this SWOP is targeted again; retrying", task)
                    self._end(job)
                    self.finished.discard((generation, task))
            return
        if state != "RUNNING" or self.ending:
            return  # nothing to do, or an old task is still being cleaned up
        key = (generation, task)
        if key in self.finished:
            return
        if self.declined.get(key) == updated:
            return
        self._take(generation, task, updated)

    def _take(self, generation: int, name: str, updated: str) -> None:
        problem = ""
        try:
            task = read_task(self.sn, name)
        except TaskUnreadable as exc:
            task, problem = TaskDefinition(name, "", "", ROOT_TASK, "", {}), str(exc)
        prereq = None
        if not problem and task.prereq and task.prereq != ROOT_TASK:
            try:
                prereq = read_task(self.sn, task.prereq)
            except (TaskUnreadable, SNError) as exc:
                if isinstance(exc, SNError) and exc.status != 404:
                    raise
                problem = f"Prereq {task.prereq} of task {name} cannot be read: {exc}"
        units = len(self.profile.nodes) if task.task_type == "RUN_SWARM" else 1
        if units == 0:
            self.declined[(generation, name)] = updated
            log.warning("Task %s is RUN_SWARM and profile %s has no nodes: not enrolling",
                        name, self.config.profile_path.name)
            return
        try:
            self.sn.enroll(self.runner, self.uid, self.profile.groupname, units)
        except SNError as exc:
            if exc.status in (409, 422):
                if (generation, name) not in self.declined:
                    log.info("Not enrolled in task %s: %s", name, exc)
                self.declined[(generation, name)] = updated
                return
            raise
        if problem:
            # enrolled, so that the failure reaches WAIT FOR TASKRUNNER with its reason
            log.error("Task %s cannot run: %s", name, problem)
            self.finished.add((generation, name))
            send_report(self.sn, self.runner, self.uid, "ERROR", problem)
            return
        log.info("Enrolled in task %s (%s, %d unit(s))", name, task.task_type, units)
        self._start(generation, task, prereq)

    # -- one task ----------------------------------------------------------------------------------

    def _start(self, generation: int, task: TaskDefinition,
               prereq: TaskDefinition | None) -> None:
        data = self.config.data_dir
        workdir = data / "tasks" / f"{generation}-{safe_name(task.name)}"
        job_log = logging.getLogger(f"swarm.swop.task.{task.name}")
        ctx = TaskContext(task=task, profile=self.profile, workdir=workdir,
                          volumes=data / "volumes", envs=data / "envs", prereq=prereq,
                          host_ip=self.config.host_ip, sn_ip=self.config.sn_ip,
                          sn_api_port=self.config.sn_api_port, identity=self.config.identity,
                          keep=self.config.keep, log=job_log.info)
        job = Job(generation=generation, task=task, ctx=ctx, runtime=self.make_runtime())
        ctx.progress = lambda text: self._progress(job, text)
        # a run of the same task that never ended (this SWOP was killed mid-task, and a TARGET
        # retry brings the task back) left its sandbox here; its processes were reaped at start
        left = clear_task_dir(workdir)
        if left:
            log.warning("Task %s: removed what an earlier run that did not end left in %s: %s",
                        task.name, workdir, ", ".join(left))
        workdir.mkdir(parents=True, exist_ok=True)
        job.thread = threading.Thread(target=self._run_job, args=(job,), daemon=True,
                                      name=f"task-{task.name}")
        self.job = job
        job.thread.start()

    def _run_job(self, job: Job) -> None:
        task, ctx = job.task, job.ctx
        self._report(job, "RUNNING", f"{task.task_type} started on {job.runtime.name} runtime")
        operation = getattr(job.runtime, OPERATIONS.get(task.task_type, ""), None)
        try:
            if operation is None:
                raise TaskFailed(f"unknown task type {task.task_type}")
            result = operation(ctx)
        except TaskFailed as exc:
            job.failed = True
            if not ctx.stop.is_set():
                log.error("Task %s failed: %s%s", task.name, exc.description,
                          "\n" + exc.detail if exc.detail else "")
                self._final(job, "ERROR", exc.description, exc.detail)
        except Exception as exc:  # a bug must still reach the user as a reason
            job.failed = True
            log.exception("Task %s failed unexpectedly", task.name)
            self._final(job, "ERROR", f"SWOP internal error: {type(exc).__name__}: {exc}",
                        traceback.format_exc())
        else:
            log.info("Task %s complete: %s", task.name, result)
            self._final(job, "COMPLETE", result)
        finally:
            self.finished.add((job.generation, task.name))
            job.done.set()
        # children are tied to this thread (PDEATHSIG): hold it until the task ends
        ctx.stop.wait()
        try:
            job.runtime.cleanup(ctx)
        except Exception:
            log.exception("Cleaning up task %s failed", task.name)
        log.info("Task %s cleaned up", task.name)

    def _end(self, job: Job) -> None:
        job.ctx.stop.set()
        if job.thread is not None:
            job.thread.join(timeout=60)
            if job.thread.is_alive():
                log.error("Task %s is still being cleaned up after 60 s; no new task starts "
                          "until it is", job.task.name)
                self.ending.append(job)
        if self.job is job:
            self.job = None

    def _report(self, job: Job, status: str, description: str, detail: str = "") -> bool:
        with job.lock:
            try:
                send_report(self.job_sn, self.runner, self.uid, status, description, detail)
                return True
            except SNError as exc:
                log.warning("Could not report %s for task %s: %s", status, job.task.name, exc)
                return False

    def _final(self, job: Job, status: str, description: str, detail: str = "") -> None:
        """COMPLETE or ERROR: kept and sent again on every tick until the SN takes it."""
        if not self._report(job, status, description, detail):
            job.unsent = (status, description, detail)

    def _resend(self, job: Job) -> None:
        unsent = job.unsent
        if unsent is not None and self._report(job, *unsent):
            log.info("Task %s: the %s report reached the SN", job.task.name, unsent[0])
            job.unsent = None

    def _progress(self, job: Job, text: str) -> None:
        job.progress_text = text

    def _flush_progress(self, job: Job) -> None:
        text = job.progress_text
        if not text or job.done.is_set() or time.monotonic() - job.progress_sent < \
                PROGRESS_SECONDS:
            return
        job.progress_text = ""
        job.progress_sent = time.monotonic()
        self._report(job, "RUNNING", text)
