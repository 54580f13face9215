"""The process runtime (the default): tasks run as local processes in per-task sandboxes.

* MAKE_USER_CONTAINER builds a virtual environment named by the Outcome (`userenv`).
* MAKE_SWARM_USER_CONTENT fills "volumes": directories under the SWOP workspace (`swop.content`).
* PULL_IMAGE has no meaning without images, and says so.
* RUN_SWARM starts one SL and one ML process per profile `slnodedef`. Each ML sees the task's
  absolute container paths (WorkingDir, PrivateContent, SharedContent) mapped under its own
  sandbox (`sandbox`), runs Entrypoint + Command in WorkingDir with the task's Envvars overridden
  by the node's `usrenvvars`, and finds its SL through SL_REQUEST_CHANNEL. Both processes carry
  SWOP_TASK_DIR, the task's directory in the SWOP workspace (its logs are there). A node's
  `usrcontaineropts` `gpus` becomes the ML's CUDA_VISIBLE_DEVICES; Docker-only settings
  (network, dns, labels, other container options) do not apply to processes. The SL gets the
  profile's `envvars` and the node's `slenvvars`. A non-zero exit of any ML or SL ends the task
  at once with that process's last log lines.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from swarmlearning.defaults import READY_LINES, NodeKind
from swarmlearning.swop.processes import Child, ChildRegistry, stop_all, wait_for_line
from swarmlearning.swop.profile import NodeDef, merge_env
from swarmlearning.swop.sandbox import Mount, Sandbox, SandboxError, clear_task_dir
from swarmlearning.swop.tasks import TaskContext, TaskFailed, require_nodes
from swarmlearning.swop.userenv import EnvBuilder, UserEnv

SL_READY = READY_LINES[NodeKind.SL]
SL_START_SECONDS = 60.0
POLL_SECONDS = 0.2
PYTHON_WORDS = re.compile(r"python(3(\.\d+)?)?")


def visible_gpus(options: dict[str, str | None]) -> str | None:
    """CUDA_VISIBLE_DEVICES for the profile's `usrcontaineropts` `gpus` (Docker's syntax:
    `all`, a count, or `device=3,5`); None leaves the variable as it is."""
    value = (options.get("gpus") or "").strip().strip('"')
    if not value or value == "all":
        return None
    if value.isdigit():
        return ",".join(str(i) for i in range(int(value)))
    for part in value.split(","):
        if part.startswith("device="):
            return value.split("device=", 1)[1]
    raise TaskFailed(f"usrcontaineropts gpus {value!r}: expected all, a count or device=IDS")


def safe_name(name: str) -> str:
    """A task Outcome (an image tag such as `org/img:1.0`) as one directory name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "_"


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Pair:
    """One SL and its ML program."""

    node: NodeDef
    sl: Child | None = None
    ml: Child | None = None
    sandbox: Sandbox | None = None


class ProcessRuntime:
    """Runs tasks as local processes."""

    name = "process"

    def __init__(self) -> None:
        self.pairs: list[Pair] = []
        self.channels: Path | None = None
        self.registry: ChildRegistry | None = None

    # -- MAKE_USER_CONTAINER -----------------------------------------------------------------------

    def build_user_container(self, ctx: TaskContext) -> str:
        body = ctx.task.body
        if str(body.get("BuildType", "INLINE")).upper() != "INLINE":
            raise TaskFailed("Body.BuildType REMOTE is not supported; give the steps INLINE")
        context_name = body.get("BuildContext")
        context = ctx.volumes / safe_name(str(context_name)) if context_name else None
        if context is not None and not context.is_dir():
            ctx.log(f"BuildContext volume {context_name} does not exist on this SWOP; a "
                    f"MAKE_SWARM_USER_CONTENT task with Outcome {context_name} makes it")
            context = None
        target = ctx.envs / safe_name(ctx.task.outcome)
        builder = EnvBuilder(target, context, ctx.log, ctx.workdir / "logs" / "build.log",
                             ctx.stop)
        builder.missing_context = str(context_name or "")
        ctx.progress("building the user environment")
        builder.build(list(body.get("BuildSteps") or []))
        return f"user environment {ctx.task.outcome} built"

    # -- PULL_IMAGE --------------------------------------------------------------------------------

    def pull_image(self, ctx: TaskContext) -> str:
        raise TaskFailed("PULL_IMAGE is not supported by the process runtime (it has no "
                         "images); run this SWOP with --runtime docker on a host with a Docker "
                         "engine, or build an environment with MAKE_USER_CONTAINER")

    # -- MAKE_SWARM_USER_CONTENT -------------------------------------------------------------------

    def make_content(self, ctx: TaskContext) -> str:
        from swarmlearning.swop.content.common import ContentError
        from swarmlearning.swop.content.opslist import run_ops, volume_names

        body = ctx.task.body
        names = volume_names(ctx.task.outcome, str(body.get("ContentType")),
                             max(1, len(ctx.profile.nodes)))
        ctx.volumes.mkdir(parents=True, exist_ok=True)
        for name in names:
            final = ctx.volumes / safe_name(name)
            staging = ctx.volumes / (safe_name(name) + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            ctx.progress(f"filling volume {name}")
            try:
                run_ops(list(body.get("OpsList") or []), staging, log=ctx.log)
            except ContentError as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise TaskFailed(f"volume {name}: {exc}"[:160], str(exc)) from None
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        return f"content ready in {len(names)} volume(s): {', '.join(names)}"

    # -- RUN_SWARM ---------------------------------------------------------------------------------

    def run_swarm(self, ctx: TaskContext) -> str:
        require_nodes(ctx)
        nodes = ctx.profile.nodes
        user_env = self._user_env(ctx)
        # SL channel sockets: a fresh private directory (a Unix socket path must stay short)
        self.channels = Path(tempfile.mkdtemp(prefix="swop-"))
        self.registry = ChildRegistry(ctx.workdir.parents[1] / "children")
        self.pairs = [Pair(node) for node in nodes]
        for pair in self.pairs:
            pair.sandbox = self._sandbox(ctx, pair.node)
        for pair in self.pairs:
            pair.sl = self._start_sl(ctx, pair.node)
        for pair in self.pairs:
            self._await_sl(ctx, pair)
        for pair in self.pairs:
            pair.ml = self._start_ml(ctx, pair, user_env)
        ctx.log(f"started {len(self.pairs)} SL/ML pair(s)")
        return self._watch(ctx)

    def _user_env(self, ctx: TaskContext) -> UserEnv | None:
        prereq = ctx.prereq
        if prereq is None or prereq.task_type == "MAKE_SWARM_USER_CONTENT":
            ctx.log("no user environment: the ML programs run with the SWOP's own Python")
            return None
        if prereq.task_type == "PULL_IMAGE":
            raise TaskFailed(f"Prereq {prereq.name} pulls an image, which the process runtime "
                             "cannot run; use the docker runtime")
        if prereq.task_type != "MAKE_USER_CONTAINER":
            return self._user_env_of(ctx, prereq.outcome, prereq.name, required=False)
        return self._user_env_of(ctx, prereq.outcome, prereq.name, required=True)

    @staticmethod
    def _user_env_of(ctx: TaskContext, outcome: str, task: str,
                     required: bool) -> UserEnv | None:
        found = UserEnv.load(ctx.envs / safe_name(outcome))
        if found is None and required:
            raise TaskFailed(f"user environment {outcome} (task {task}) is not on this SWOP; "
                             f"assign {task} to this SWOP first")
        return found

    def _sandbox(self, ctx: TaskContext, node: NodeDef) -> Sandbox:
        body = ctx.task.body
        sandbox = Sandbox(ctx.workdir / f"node{node.idx}" / "root")
        try:
            private = body.get("PrivateContent")
            if private:
                if not node.privatedata:
                    raise TaskFailed(f"Body.PrivateContent needs {node.path}.privatedata in "
                                     "the profile")
                sandbox.add(Mount(str(private), self._source(ctx, node.privatedata,
                                                             node.privatedata_mtype, node)))
            for index, shared in enumerate(body.get("SharedContent") or []):
                source = self._source(ctx, str(shared.get("Src")),
                                      str(shared.get("MType", "BIND")), node,
                                      f"Body.SharedContent[{index}].Src")
                sandbox.add(Mount(str(shared.get("Tgt")), source))
            sandbox.register_prefix(str(body.get("WorkingDir") or "/"))
            sandbox.materialize()
        except SandboxError as exc:
            raise TaskFailed(f"{node.path}: {exc}"[:160], str(exc)) from None
        return sandbox

    @staticmethod
    def _source(ctx: TaskContext, src: str, mtype: str, node: NodeDef,
                field: str = "") -> Path:
        field = field or f"{node.path}.privatedata.src"
        if mtype.upper() == "VOLUME":
            for name in (f"{src}-{node.idx}", src):
                path = ctx.volumes / safe_name(name)
                if path.is_dir():
                    return path
            raise TaskFailed(f"{field}: volume {src} does not exist on this SWOP (a "
                             "MAKE_SWARM_USER_CONTENT task makes it)")
        path = Path(src).expanduser()
        if not path.is_absolute():
            path = (Path(ctx.profile.source).parent / path).resolve()
        if not path.exists():
            raise TaskFailed(f"{field}: {src} does not exist on this host")
        return path

    # -- SL ----------------------------------------------------------------------------------------

    def _identity(self, ctx: TaskContext, node: NodeDef) -> list[str]:
        """The SL's --cert/--key/--capath (or --cacert) options: the profile's identity
        attributes (relative paths from the profile's directory), else the SWOP's own."""
        found: dict[str, Path] = {}
        base = Path(ctx.profile.source).parent
        for mount in node.identity:
            kind = mount.a_type.upper()
            if kind not in ("KEY", "CERT", "CAPATH", "CACERT"):
                continue
            path = (base / Path(mount.src).expanduser()).resolve()
            if not path.exists():
                raise TaskFailed(f"{mount.path}.src: {mount.src} does not exist on this host")
            found[kind] = path
        if not found:
            ident = ctx.identity
            found = {"CERT": Path(ident.cert).resolve(), "KEY": Path(ident.key).resolve()}
            if ident.capath:
                found["CAPATH"] = Path(ident.capath).resolve()
            if ident.cacert:
                found["CACERT"] = Path(ident.cacert).resolve()
        missing = [k for k in ("KEY", "CERT") if k not in found]
        if missing or not ("CAPATH" in found or "CACERT" in found):
            need = missing or ["CAPATH"]
            raise TaskFailed(f"{node.path}.identity has no {' or '.join(need)} attribute")
        options = ["--cert", str(found["CERT"]), "--key", str(found["KEY"])]
        for kind in ("CAPATH", "CACERT"):
            if kind in found:
                options += [f"--{kind.lower()}", str(found[kind])]
        return options

    def _host(self, ctx: TaskContext, node: NodeDef) -> str:
        if node.slhostip:
            try:
                return str(ipaddress.ip_address(str(node.slhostip)))
            except ValueError:
                ctx.log(f"{node.path}.slhostip {node.slhostip} is a container name; the SL "
                        f"listens on {ctx.host_ip}")
        return ctx.host_ip

    def _start_sl(self, ctx: TaskContext, node: NodeDef) -> Child:
        identity = self._identity(ctx, node)
        host = self._host(ctx, node)
        port = node.slport or free_port(host)
        data = ctx.workdir / f"node{node.idx}" / "sl"
        data.mkdir(parents=True, exist_ok=True)
        assert self.channels is not None
        env = merge_env(os.environ, ctx.profile.envvars, node.slenvvars)
        env.update(PYTHONUNBUFFERED="1", SWOP_TASK_DIR=str(ctx.workdir))
        command = [sys.executable, "-m", "swarmlearning.sl", "--host-ip", host,
                   "--sn-ip", ctx.sn_ip, "--sn-api-port", str(ctx.sn_api_port),
                   "--sl-fs-port", str(port), *identity, "--data-dir", str(data),
                   "--name", node.sl_name,
                   "--channel", str(self.channels / f"n{node.idx}.sock")]
        ctx.log(f"starting SL {node.sl_name} on {host}:{port}")
        return Child(node.sl_name, command, cwd=data, env=env,
                     log_path=ctx.workdir / "logs" / f"{node.sl_name}.log",
                     registry=self.registry)

    def _await_sl(self, ctx: TaskContext, pair: Pair) -> None:
        assert pair.sl is not None
        if wait_for_line(pair.sl, SL_READY, SL_START_SECONDS, ctx.stop):
            return
        if ctx.stop.is_set():
            raise TaskFailed("stopped")
        code = pair.sl.poll()
        what = (f"exited with code {code}" if code is not None
                else f"was not ready within {SL_START_SECONDS:g} s")
        raise TaskFailed(f"SL {pair.node.sl_name} {what}", pair.sl.tail())

    # -- ML ----------------------------------------------------------------------------------------

    def _start_ml(self, ctx: TaskContext, pair: Pair, user_env: UserEnv | None) -> Child:
        body = ctx.task.body
        node, sandbox = pair.node, pair.sandbox
        assert sandbox is not None and self.channels is not None
        workdir = sandbox.ensure_dir(str(body.get("WorkingDir") or "/"))
        env = merge_env(os.environ, user_env.env if user_env else {},
                      _kv(body.get("Envvars")), node.usrenvvars)
        env = sandbox.rewrite_env(env)
        bin_dir = user_env.bin if user_env else Path(sys.executable).parent
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}"
        if user_env:
            env["VIRTUAL_ENV"] = str(user_env.path)
        env.update(SL_REQUEST_CHANNEL=str(self.channels / f"n{node.idx}.sock"),
                   PYTHONUNBUFFERED="1", SWOP_TASK_DIR=str(ctx.workdir))
        gpus = visible_gpus(node.usrcontaineropts)
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
        command = self._command(body, user_env, env["PATH"], sandbox)
        ctx.log(f"starting ML {node.ml_name}: {' '.join(command)} (in {workdir})")
        return Child(node.ml_name, command, cwd=workdir, env=env,
                     log_path=ctx.workdir / "logs" / f"{node.ml_name}.log",
                     registry=self.registry)

    @staticmethod
    def _command(body: dict, user_env: UserEnv | None, path: str, sandbox: Sandbox) -> list[str]:
        try:
            entry = shlex.split(str(body.get("Entrypoint") or ""))
            args = shlex.split(str(body.get("Command") or ""))
        except ValueError as exc:
            raise TaskFailed(f"Body.Command: cannot split it into words: {exc}") from None
        words = entry + args
        if not words:
            raise TaskFailed("Body.Entrypoint and Body.Command are both empty")
        if PYTHON_WORDS.fullmatch(words[0]):
            words[0] = str(user_env.python if user_env else sys.executable)
        elif words[0].startswith("/"):
            mapped = sandbox.host_path(words[0])
            words[0] = str(mapped) if mapped.exists() else words[0]
        else:
            found = shutil.which(words[0], path=path)
            if found is None:
                raise TaskFailed(f"Body.Entrypoint {words[0]} is not found on this SWOP")
            words[0] = found
        return words

    # -- watching ----------------------------------------------------------------------------------

    def _watch(self, ctx: TaskContext) -> str:
        shown = ""
        while True:
            if ctx.stop.is_set():
                raise TaskFailed("stopped")
            running = 0
            for pair in self.pairs:
                assert pair.ml is not None and pair.sl is not None
                code = pair.ml.poll()
                if code is None:
                    running += 1
                    sl_code = pair.sl.poll()
                    if sl_code is not None:
                        raise TaskFailed(f"SL {pair.node.sl_name} exited with code {sl_code} "
                                         f"while ML {pair.node.ml_name} was running",
                                         pair.sl.tail())
                elif code != 0:
                    raise TaskFailed(f"ML {pair.node.ml_name} (node {pair.node.idx}) "
                                     f"{_exit_words(code)}", pair.ml.tail())
            if running == 0:
                return f"{len(self.pairs)} SL/ML pair(s) finished"
            text = f"training: {running} of {len(self.pairs)} ML programs running"
            if text != shown:
                ctx.progress(text)
                shown = text
            time.sleep(POLL_SECONDS)

    # -- cleanup -----------------------------------------------------------------------------------

    def cleanup(self, ctx: TaskContext) -> None:
        stop_all([pair.ml for pair in self.pairs if pair.ml is not None])
        stop_all([pair.sl for pair in self.pairs if pair.sl is not None])
        if self.channels is not None:
            shutil.rmtree(self.channels, ignore_errors=True)
        if not ctx.keep:
            for pair in self.pairs:
                if pair.sandbox is not None:
                    pair.sandbox.cleanup()
            clear_task_dir(ctx.workdir)
        self.pairs = []
        self.channels = None


def _kv(value: object) -> dict[str, str | None]:
    from swarmlearning.swop.profile import kv_pairs

    return kv_pairs(value)


def _exit_words(code: int) -> str:
    if code < 0:
        try:
            import signal

            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"
