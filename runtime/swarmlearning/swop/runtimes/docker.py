"""The docker runtime: SWOP tasks as Docker images, volumes and containers, as HPE's SWOP runs
them (through the Docker SDK for Python, `pip install 'swci[docker]'`). `DockerRuntime` is the
runtime class: it builds and pulls images and orchestrates RUN_SWARM, on top of the engine
basics (`docker_engine`), the volumes (`docker_volumes`) and the pair specs (`docker_pairs`).

* MAKE_USER_CONTAINER writes the task's BuildSteps as a Dockerfile into a fresh build context
  (holding a copy of the BuildContext volume's files, if one is named) and builds the image
  tagged with the task's Outcome, streaming the build log.
* PULL_IMAGE pulls `OrgAndReg + RepoName:Tag`, with the credentials of `Auth` (null: the
  engine's own; a path to a Docker `config.json`; or `{Username, Password}`), and tags the image
  with the Outcome when that names it differently.
* MAKE_SWARM_USER_CONTENT applies the OpsList in a scratch directory and copies the result into
  Docker volumes through a short-lived helper container (`docker_volumes`).
* RUN_SWARM starts one SL container (image `sl_image`) and one ML container (the Prereq task's
  image) per profile `slnodedef`, then waits until every ML container has exited. SL and ML of a
  pair share a small tmpfs volume at /swarm-channel that holds the SL's channel socket; the ML
  finds it in SL_REQUEST_CHANNEL. Both run as `ml_user` (the SWOP's uid:gid by default, as HPE's
  ML containers do), since the SL lets only its own user connect to the socket.

Everything it creates carries the labels `swci.swop=<swop uid>`, `swci.task=<task name>` and
`swci.role=sl|ml|helper|channel|content`; `cleanup` finds containers by those labels.

Paths (bind sources, `ctx.workdir`) are taken as paths on the Docker host: SWOP is expected to
run on the host whose engine it talks to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swarmlearning.defaults import READY_LINES, NodeKind
from swarmlearning.swop.profile import NodeDef
from swarmlearning.swop.runtimes.docker_engine import (
    ENDED,
    LOG_TAIL_LINES,
    _check_stop,
    _explain,
    _failed,
    _remove_scratch,
)
from swarmlearning.swop.runtimes.docker_pairs import DockerPairs
from swarmlearning.swop.runtimes.docker_specs import (
    Dockerfile,
    as_text,
    image_ref,
    registry_auth,
    registry_of,
    render_dockerfile,
    split_ref,
    stream_lines,
)
from swarmlearning.swop.tasks import (
    DESCRIPTION_LIMIT,
    DETAIL_LIMIT,
    TaskContext,
    TaskFailed,
    clip,
    require_nodes,
)

DEFAULT_SL_IMAGE = "swci/sl:latest"
SL_READY = READY_LINES[NodeKind.SL]
DOCKERFILE_NAME = "swop.Dockerfile"
ML_USER_SELF = "self"

POLL_SECONDS = 0.5
SL_START_SECONDS = 60.0
STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : ")


# -- the Docker SDK ----------------------------------------------------------------------------


class _SDKMissing(Exception):
    """Stands in for the SDK's exceptions when it is not installed; never raised."""


def sdk_errors() -> Any:
    """The SDK's exception classes (`docker.errors`): DockerException, APIError, NotFound,
    ImageNotFound, BuildError. Without the SDK, placeholders that nothing raises."""
    try:
        from docker import errors
    except ImportError:
        return SimpleNamespace(DockerException=_SDKMissing, APIError=_SDKMissing,
                               NotFound=_SDKMissing, ImageNotFound=_SDKMissing,
                               BuildError=_SDKMissing)
    return errors


def docker_available() -> tuple[bool, str]:
    """(True, "") when the SDK imports and an engine answers a ping within about 5 s, else
    (False, why). Never raises."""
    try:
        import docker
    except ImportError:
        return False, "the Docker SDK for Python is not installed (pip install 'swci[docker]')"
    try:
        client = docker.from_env(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure means "not available"; the reason is reported
        return False, f"no Docker engine is reachable: {exc}"
    return True, ""


# -- the runtime -------------------------------------------------------------------------------


@dataclass
class _Pair:
    node: NodeDef
    sl: Any = None
    ml: Any = None


class DockerRuntime(DockerPairs):
    """Runs SWOP tasks on a Docker engine.

    `client`: a docker SDK client (default: `docker.from_env()`, made on first use);
    `sl_image`: the image with this package installed, run for every SL;
    `helper_image`: any local image, used (never started) to reach volume files (default
    `sl_image`); `swop_uid`: this SWOP's id, put in the `swci.swop` label;
    `ml_user`: user of the SL and ML containers, `"self"` for this process's uid:gid, None for
    the image's own; `run_timeout`: seconds RUN_SWARM waits for the ML containers (None: no
    limit other than `ctx.stop`).
    """

    name = "docker"

    def __init__(self, client: Any = None, *, sl_image: str = DEFAULT_SL_IMAGE,
                 helper_image: str | None = None, swop_uid: str = "swop",
                 ml_user: str | None = ML_USER_SELF, sl_start_timeout: float = SL_START_SECONDS,
                 run_timeout: float | None = None) -> None:
        self._client = client
        self.sl_image = sl_image
        self.helper_image = helper_image or sl_image
        self.swop_uid = swop_uid
        self.user = f"{os.getuid()}:{os.getgid()}" if ml_user == ML_USER_SELF else ml_user
        self.sl_start_timeout = sl_start_timeout
        self.run_timeout = run_timeout
        self._pairs: list[_Pair] = []

    def _errors(self) -> Any:
        return sdk_errors()

    # -- MAKE_USER_CONTAINER -----------------------------------------------------------------------

    def build_user_container(self, ctx: TaskContext) -> str:
        body = ctx.task.body
        build_type = str(body.get("BuildType") or "INLINE").upper()
        if build_type != "INLINE":
            raise TaskFailed(f"Body.BuildType {build_type} is not supported; give the "
                             "BuildSteps INLINE")
        dockerfile = render_dockerfile(body.get("BuildSteps"))
        context = self._scratch(ctx, "build")
        try:
            source = body.get("BuildContext")
            if source:
                self._copy_volume_out(ctx, str(source), context)
            (context / DOCKERFILE_NAME).write_text(dockerfile.text, encoding="utf-8")
            ctx.progress(f"building image {ctx.task.outcome}")
            self._build(ctx, context, dockerfile)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        return clip(f"image {ctx.task.outcome} built ({len(dockerfile.instructions)} steps)",
                    DESCRIPTION_LIMIT)

    def _build(self, ctx: TaskContext, context: Path, dockerfile: Dockerfile) -> None:
        errors = sdk_errors()
        outcome = ctx.task.outcome
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        step: tuple[int, int] | None = None
        try:
            stream = self.client.api.build(
                path=str(context), dockerfile=DOCKERFILE_NAME, tag=outcome, rm=True,
                forcerm=True, decode=True, labels=self._labels(ctx, "image"))
            for chunk in stream:
                _check_stop(ctx)
                for line in stream_lines(chunk):
                    ctx.log(line)
                    tail.append(line)
                    match = STEP_LINE.match(line)
                    if match:
                        step = int(match.group(1)), int(match.group(2))
                        ctx.progress(f"building {outcome}: step {step[0]}/{step[1]}")
                if chunk.get("error"):
                    tail.append(str(chunk["error"]).strip())
                    raise self._build_failed(outcome, dockerfile, step, str(chunk["error"]),
                                             tail)
        except errors.BuildError as exc:
            tail.extend(as_text(item.get("stream") or item.get("error"))
                        for item in getattr(exc, "build_log", []) if isinstance(item, Mapping))
            raise self._build_failed(outcome, dockerfile, step, _explain(exc), tail) from None
        except errors.APIError as exc:
            raise _failed(f"build of {outcome} failed", exc) from None
        self._require_image(outcome, f"the build of {outcome} ended without an image")

    @staticmethod
    def _build_failed(outcome: str, dockerfile: Dockerfile, step: tuple[int, int] | None,
                      error: str, tail: Iterable[str]) -> TaskFailed:
        detail = clip("\n".join(tail), DETAIL_LIMIT)
        error = " ".join(error.split())
        if step is None:
            return TaskFailed(clip(f"build of {outcome} failed: {error}", DESCRIPTION_LIMIT),
                              detail)
        number, total = step
        where = f"step {number}/{total}"
        if 0 < number <= len(dockerfile.instructions):
            instruction = dockerfile.instructions[number - 1]
            where += f" ({instruction.where}: {instruction.text})"
        return TaskFailed(clip(f"build of {outcome} failed at {where}", DESCRIPTION_LIMIT), detail)

    # -- PULL_IMAGE --------------------------------------------------------------------------------

    def pull_image(self, ctx: TaskContext) -> str:
        body = ctx.task.body
        repository, tag = image_ref(body)
        ref = f"{repository}:{tag}"
        auth = registry_auth(body.get("Auth"), registry_of(repository),
                             Path(ctx.profile.source).parent)
        errors = sdk_errors()
        ctx.progress(f"pulling {ref}")
        try:
            for chunk in self.client.api.pull(repository, tag=tag, stream=True, decode=True,
                                              auth_config=auth):
                _check_stop(ctx)
                if chunk.get("error"):
                    raise TaskFailed(clip(f"pull {ref} failed: {chunk['error']}",
                                          DESCRIPTION_LIMIT), clip(json.dumps(chunk),
                                                                   DETAIL_LIMIT))
                if chunk.get("status") and not chunk.get("progressDetail"):
                    ctx.log(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k)))
        except errors.APIError as exc:
            raise _failed(f"pull {ref} failed", exc) from None
        image = self._require_image(ref, f"pull {ref} ended without the image")
        outcome = str(ctx.task.outcome or "")
        if outcome and outcome != ref:
            self._tag(image, outcome)
            return clip(f"image {ref} pulled and tagged {outcome}", DESCRIPTION_LIMIT)
        return clip(f"image {ref} pulled", DESCRIPTION_LIMIT)

    @staticmethod
    def _tag(image: Any, ref: str) -> None:
        repository, tag = split_ref(ref)
        try:
            image.tag(repository, tag or "latest")
        except sdk_errors().APIError as exc:
            raise _failed(f"cannot tag the image as {ref} (the task's Outcome)", exc) from None

    # -- RUN_SWARM ---------------------------------------------------------------------------------

    def run_swarm(self, ctx: TaskContext) -> str:
        require_nodes(ctx)
        nodes = ctx.profile.nodes
        image = self._ml_image(ctx)
        self._check_network(ctx)
        specs = [(self._sl_spec(ctx, node), self._ml_spec(ctx, node, image)) for node in nodes]
        self._pairs = [_Pair(node) for node in nodes]
        for pair, (sl_spec, _ml_spec) in zip(self._pairs, specs, strict=True):
            pair.sl = self._launch(ctx, sl_spec, "SL")
        for pair in self._pairs:
            self._await_sl(ctx, pair)
        for pair, (_sl_spec, ml_spec) in zip(self._pairs, specs, strict=True):
            pair.ml = self._launch(ctx, ml_spec, "ML")
        ctx.log(f"started {len(self._pairs)} SL/ML pair(s)")
        return self._watch(ctx)

    def _ml_image(self, ctx: TaskContext) -> str:
        prereq = ctx.prereq
        if prereq is None or prereq.task_type not in ("MAKE_USER_CONTAINER", "PULL_IMAGE"):
            what = ("the task has no Prereq" if prereq is None
                    else f"Prereq {prereq.name} is a {prereq.task_type} task")
            raise TaskFailed(f"no ML image: {what}; RUN_SWARM runs the image of a "
                             "MAKE_USER_CONTAINER or PULL_IMAGE Prereq")
        image = prereq.outcome
        self._require_image(image, f"ML image {image} (Outcome of {prereq.name}) is not on this "
                                   f"host; assign {prereq.name} to this SWOP first")
        return image

    def _await_sl(self, ctx: TaskContext, pair: _Pair) -> None:
        """Return once the SL of `pair` serves its channel (its ready line is logged)."""
        name = pair.node.sl_name
        started = time.monotonic()
        ctx.progress(f"waiting for SL {name}")
        while True:
            if SL_READY in as_text(self._logs(pair.sl)):
                return
            status, code, _oom = self._state(pair.sl, f"SL {name}")
            if status in ENDED:
                raise TaskFailed(f"SL {name} exited with code {code} before it was ready",
                                 self._tail(pair.sl))
            if time.monotonic() - started > self.sl_start_timeout:
                raise TaskFailed(f"SL {name} was not ready within {self.sl_start_timeout:g} s",
                                 self._tail(pair.sl))
            if ctx.stop.wait(POLL_SECONDS):
                raise TaskFailed("stopped")

    def _watch(self, ctx: TaskContext) -> str:
        """Wait until every ML container has exited; fail on the first bad exit."""
        started = time.monotonic()
        total = len(self._pairs)
        shown = ""
        while True:
            running = 0
            for pair in self._pairs:
                if not self._ml_finished(pair):
                    running += 1
            if running == 0:
                return f"{total} SL/ML pairs finished"
            text = f"training: {running} of {total} ML containers running"
            if text != shown:
                ctx.progress(text)
                shown = text
            if self.run_timeout is not None and time.monotonic() - started > self.run_timeout:
                raise TaskFailed(f"{running} ML container(s) still running after "
                                 f"{self.run_timeout:g} s")
            if ctx.stop.wait(POLL_SECONDS):
                raise TaskFailed("stopped")

    def _ml_finished(self, pair: _Pair) -> bool:
        """True once the ML of `pair` exited with 0; TaskFailed when it or its SL failed."""
        ml_name, sl_name = pair.node.ml_name, pair.node.sl_name
        status, code, oom = self._state(pair.ml, f"ML {ml_name}")
        if status == "removed":
            raise TaskFailed(f"ML {ml_name} was removed before it finished")
        if status in ENDED:
            if code != 0:
                memory = " (out of memory)" if oom else ""
                raise TaskFailed(f"ML {ml_name} exited with code {code}{memory}",
                                 self._tail(pair.ml))
            return True
        sl_status, sl_code, _oom = self._state(pair.sl, f"SL {sl_name}")
        if sl_status in ENDED:
            raise TaskFailed(f"SL {sl_name} exited with code {sl_code} while ML {ml_name} was "
                             "running", self._tail(pair.sl))
        return False

    # -- cleanup -----------------------------------------------------------------------------------

    def cleanup(self, ctx: TaskContext) -> None:
        self._pairs = []
        try:
            client = self.client
        except TaskFailed as exc:
            ctx.log(f"cleanup: {exc.description}")
            client = None
        if client is not None:
            for container in self._owned(ctx, "containers"):
                self._retire(ctx, container)
            if not ctx.keep:
                for volume in self._owned(ctx, "volumes", role="channel"):
                    self._remove(ctx, volume, f"volume {getattr(volume, 'name', '?')}")
        _remove_scratch(ctx.workdir, keep=ctx.keep)
