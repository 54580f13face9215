"""The docker runtime: SWOP tasks as Docker images, volumes and containers, as HPE's SWOP runs
them (through the Docker SDK for Python, `pip install 'swci[docker]'`).

* MAKE_USER_CONTAINER writes the task's BuildSteps as a Dockerfile into a fresh build context
  (holding a copy of the BuildContext volume's files, if one is named) and builds the image
  tagged with the task's Outcome, streaming the build log.
* PULL_IMAGE pulls `OrgAndReg + RepoName:Tag`, with the credentials of `Auth` (null: the
  engine's own; a path to a Docker `config.json`; or `{Username, Password}`), and tags the image
  with the Outcome when that names it differently.
* MAKE_SWARM_USER_CONTENT applies the OpsList in a scratch directory and copies the result into
  Docker volumes (`content.volume_names`: one for BUILDCONTENT, one per profile node for
  SWARMCONTENT) through a short-lived helper container.
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

import contextlib
import json
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swarmlearning.swop.docker_specs import (
    Dockerfile,
    as_text,
    container_options,
    endpoint_config,
    image_ref,
    labels_of,
    mount,
    registry_auth,
    registry_of,
    render_dockerfile,
    resolve_path,
    short_name,
    split_ref,
    stream_lines,
    sub_path,
    typed_kv,
    words_of,
)
from swarmlearning.swop.profile import NodeDef, kv_pairs, merge_env
from swarmlearning.swop.tasks import (
    DESCRIPTION_LIMIT,
    DETAIL_LIMIT,
    TaskContext,
    TaskFailed,
    clip,
    require_nodes,
)

DEFAULT_SL_IMAGE = "swci/sl:latest"
SL_ENTRYPOINT = ["python3", "-m", "swarmlearning.sl"]
SL_FS_PORT = 30305
SL_DATA_DIR = "/platform/swarm/data"
CHANNEL_DIR = "/swarm-channel"
CHANNEL_SOCKET = f"{CHANNEL_DIR}/ch.sock"
CHANNEL_ENV = "SL_REQUEST_CHANNEL"
SL_READY = "Starting SWARM-LEARNING-FS on port: "
VOLUME_MOUNT = "/swci-volume"
DOCKERFILE_NAME = "swop.Dockerfile"
ML_USER_SELF = "self"

POLL_SECONDS = 0.5
SL_START_SECONDS = 60.0
STOP_SECONDS = 10
LOG_TAIL_LINES = 40
ENDED = ("exited", "dead", "removed")
STEP_LINE = re.compile(r"^Step (\d+)/(\d+) : ")
IDENTITY_FLAGS = {"CERT": "--cert", "KEY": "--key", "CAPATH": "--capath", "CACERT": "--cacert"}


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


def _explain(exc: BaseException) -> str:
    """The engine's own message for an SDK error (`explanation`), else the exception text."""
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _failed(what: str, exc: BaseException) -> TaskFailed:
    return TaskFailed(clip(f"{what}: {_explain(exc)}", DESCRIPTION_LIMIT),
                      clip(str(exc), DETAIL_LIMIT))


def _check_stop(ctx: TaskContext) -> None:
    if ctx.stop.is_set():
        raise TaskFailed("stopped")


# -- the runtime -------------------------------------------------------------------------------


@dataclass
class _Pair:
    node: NodeDef
    sl: Any = None
    ml: Any = None


class DockerRuntime:
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

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
            except ImportError:
                raise TaskFailed("the docker runtime needs the Docker SDK for Python "
                                 "(pip install 'swci[docker]')") from None
            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as exc:
                raise _failed("cannot reach the Docker engine", exc) from None
        return self._client

    def _labels(self, ctx: TaskContext, role: str, node: NodeDef | None = None) -> dict[str, str]:
        labels = {"swci.swop": self.swop_uid, "swci.task": ctx.task.name, "swci.role": role}
        if node is not None:
            labels["swci.node"] = str(node.idx)
        return labels

    def _scratch(self, ctx: TaskContext, what: str) -> Path:
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"docker-{what}-", dir=ctx.workdir))

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

    def _require_image(self, ref: str, message: str) -> Any:
        errors = sdk_errors()
        try:
            return self.client.images.get(ref)
        except errors.NotFound:
            raise TaskFailed(clip(message, DESCRIPTION_LIMIT)) from None
        except errors.APIError as exc:
            raise _failed(f"cannot inspect image {ref}", exc) from None

    # -- volumes, through a helper container ------------------------------------------------------

    @contextlib.contextmanager
    def _helper(self, ctx: TaskContext, volume: str) -> Iterator[Any]:
        """A created (never started) container with `volume` mounted at VOLUME_MOUNT."""
        errors = sdk_errors()
        try:
            helper = self.client.containers.create(
                self.helper_image, command=["true"], labels=self._labels(ctx, "helper"),
                mounts=[mount("volume", volume, VOLUME_MOUNT)])
        except errors.ImageNotFound:
            raise TaskFailed(f"the helper image {self.helper_image} is not on this host (it is "
                             "the SL image; build or pull it first)") from None
        except errors.APIError as exc:
            raise _failed(f"cannot open volume {volume}", exc) from None
        try:
            yield helper
        finally:
            with contextlib.suppress(errors.APIError):
                helper.remove(force=True)

    def _volume_exists(self, name: str) -> bool:
        errors = sdk_errors()
        try:
            self.client.volumes.get(name)
        except errors.NotFound:
            return False
        except errors.APIError as exc:
            raise _failed(f"cannot inspect volume {name}", exc) from None
        return True

    def _copy_volume_out(self, ctx: TaskContext, volume: str, dest: Path) -> None:
        """The files of `volume` copied into the directory `dest`."""
        if not self._volume_exists(volume):
            raise TaskFailed(clip(f"Body.BuildContext: volume {volume} does not exist on this "
                                  f"host (a MAKE_SWARM_USER_CONTENT task with Outcome {volume} "
                                  "makes it)", DESCRIPTION_LIMIT))
        errors = sdk_errors()
        archive = dest.parent / f"{dest.name}.context.tar"
        try:
            with self._helper(ctx, volume) as helper, archive.open("wb") as out:
                chunks, _stat = helper.get_archive(VOLUME_MOUNT)
                for chunk in chunks:
                    out.write(chunk)
            _extract_below_root(archive, dest)
        except errors.APIError as exc:
            raise _failed(f"cannot copy volume {volume}", exc) from None
        except (tarfile.TarError, OSError) as exc:
            raise TaskFailed(clip(f"cannot unpack volume {volume}: {exc}",
                                  DESCRIPTION_LIMIT)) from None
        finally:
            archive.unlink(missing_ok=True)
        ctx.log(f"build context: the files of volume {volume}")

    def _fill_volume(self, ctx: TaskContext, name: str, archive: Path) -> None:
        """Volume `name` (made afresh when it is not in use) holding the files of `archive`."""
        errors = sdk_errors()
        try:
            if not self._replace_volume(ctx, name):
                self.client.volumes.create(name=name, labels=self._labels(ctx, "content"))
            with self._helper(ctx, name) as helper, archive.open("rb") as data:
                helper.put_archive(VOLUME_MOUNT, data)
        except errors.APIError as exc:
            raise _failed(f"cannot fill volume {name}", exc) from None
        ctx.log(f"volume {name} filled")

    def _replace_volume(self, ctx: TaskContext, name: str) -> bool:
        """Remove volume `name` if it exists and is unused; True when an in-use one stays."""
        errors = sdk_errors()
        try:
            old = self.client.volumes.get(name)
        except errors.NotFound:
            return False
        try:
            old.remove()
        except errors.APIError:
            ctx.log(f"volume {name} is in use; copying the new files over its old ones")
            return True
        ctx.log(f"replacing volume {name}")
        return False

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

    # -- MAKE_SWARM_USER_CONTENT -------------------------------------------------------------------

    def make_content(self, ctx: TaskContext) -> str:
        from swarmlearning.swop.content import ContentError, run_ops, volume_names

        body = ctx.task.body
        try:
            names = volume_names(ctx.task.outcome, str(body.get("ContentType")),
                                 len(ctx.profile.nodes))
        except ContentError as exc:
            raise TaskFailed(clip(f"Body.ContentType: {exc}", DESCRIPTION_LIMIT)) from None
        staging = self._scratch(ctx, "content")
        try:
            files = staging / "files"
            ctx.progress(f"fetching the content of {ctx.task.outcome}")
            try:
                run_ops(body.get("OpsList"), files, log=ctx.log)  # type: ignore[arg-type]
            except ContentError as exc:
                raise TaskFailed(clip(str(exc), DESCRIPTION_LIMIT),
                                 clip(str(exc), DETAIL_LIMIT)) from None
            archive = _tar_directory(files, staging / "content.tar")
            for name in names:
                _check_stop(ctx)
                ctx.progress(f"filling volume {name}")
                self._fill_volume(ctx, name, archive)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return clip(f"content ready in {len(names)} volume(s): {', '.join(names)}",
                    DESCRIPTION_LIMIT)

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

    def _check_network(self, ctx: TaskContext) -> None:
        network = ctx.profile.network
        if not network or network in ("host", "bridge"):
            return
        errors = sdk_errors()
        try:
            self.client.networks.get(network)
        except errors.NotFound:
            raise TaskFailed(clip(f"the profile's network {network} does not exist on this "
                                  f"host (docker network create {network})",
                                  DESCRIPTION_LIMIT)) from None
        except errors.APIError as exc:
            raise _failed(f"cannot inspect network {network}", exc) from None

    def _network(self, ctx: TaskContext, options: Mapping[str, Any], where: str,
                 hostname: str) -> dict[str, Any]:
        network = ctx.profile.network
        if network == "host":
            return {"network_mode": "host"}
        spec: dict[str, Any] = {"hostname": hostname}
        if network:
            spec["network"] = network
            endpoint = endpoint_config(options, where)
            if endpoint:
                spec["networking_config"] = {network: endpoint}
        return spec

    # -- SL ----------------------------------------------------------------------------------------

    def _sl_spec(self, ctx: TaskContext, node: NodeDef) -> dict[str, Any]:
        mounts, identity_args = self._identity(ctx, node)
        data = ctx.workdir / f"docker-sl{node.idx}-data"
        data.mkdir(parents=True, exist_ok=True)
        mounts += [mount("volume", self._channel_volume(ctx, node), CHANNEL_DIR),
                   mount("bind", str(data), SL_DATA_DIR)]
        host_ip, fs_port = self._sl_address(ctx, node)
        command = ["--sn-ip", ctx.sn_ip, "--sn-api-port", str(ctx.sn_api_port),
                   "--host-ip", host_ip, "--sl-fs-port", str(fs_port), *identity_args,
                   "--data-dir", SL_DATA_DIR, "--name", node.sl_name,
                   "--channel", CHANNEL_SOCKET]
        env = merge_env(ctx.profile.envvars, node.slenvvars)
        env.update(SN_NODE_IP=ctx.sn_ip, SN_API_SERVER_PORT=str(ctx.sn_api_port),
                   PYTHONUNBUFFERED="1")
        spec: dict[str, Any] = {
            "image": self.sl_image, "name": node.sl_name, "entrypoint": SL_ENTRYPOINT,
            "command": command, "environment": env, "mounts": mounts, "user": self.user,
            "labels": {**labels_of(node.sllabels), **self._labels(ctx, "sl", node)},
            "dns": list(ctx.profile.dns) or None, "detach": True}
        spec.update(self._network(ctx, node.slnetworkopts, f"{node.path}.slnetworkopts",
                                  node.sl_name))
        port = _published_port(node)
        if port is not None and ctx.profile.network != "host":
            spec["ports"] = {f"{SL_FS_PORT}/tcp": port}
        return spec

    def _sl_address(self, ctx: TaskContext, node: NodeDef) -> tuple[str, int]:
        """(--host-ip, --sl-fs-port). The SL listens on the address it advertises to peers, so
        on a Docker network that is its container address (`slnetworkopts.ip`, else its name,
        which the network's DNS resolves); with `network: host` it is `slhostip`."""
        if ctx.profile.network == "host":
            return str(node.slhostip or ctx.host_ip), int(node.slport or SL_FS_PORT)
        address = node.slnetworkopts.get("ip") or node.sl_name
        if node.slhostip:
            ctx.log(f"{node.path}: SL {node.sl_name} is reached at {address}:{SL_FS_PORT} on "
                    f"network {ctx.profile.network}; slhostip {node.slhostip} is not advertised")
        return str(address), SL_FS_PORT

    def _identity(self, ctx: TaskContext, node: NodeDef) -> tuple[list[dict], list[str]]:
        """The identity mounts of an SL and its --cert/--key/--capath/--cacert options."""
        mounts: list[dict[str, Any]] = []
        paths: dict[str, str] = {}
        for index, item in enumerate(node.identity):
            kind = item.a_type.upper()
            if kind not in IDENTITY_FLAGS:
                raise TaskFailed(clip(f"{item.path}.aType {item.a_type} is not supported by "
                                      "the docker runtime (give KEY, CERT and CAPATH or "
                                      "CACERT)", DESCRIPTION_LIMIT))
            mounts.append(self._user_mount(ctx, node, item.m_type, item.src, item.tgt,
                                           item.path, read_only=True))
            sub = sub_path(node, index)
            target = posixpath.normpath(item.tgt)
            paths[kind] = posixpath.join(target, sub) if sub else target
        if not node.identity and ctx.identity is not None:
            mounts, paths = self._swop_identity(ctx)
        missing = [kind for kind in ("KEY", "CERT") if kind not in paths]
        if "CAPATH" not in paths and "CACERT" not in paths:
            missing.append("CAPATH or CACERT")
        if missing:
            raise TaskFailed(f"{node.path}.identity has no {' and no '.join(missing)} attribute")
        args = [arg for kind, flag in IDENTITY_FLAGS.items() if kind in paths
                for arg in (flag, paths[kind])]
        return mounts, args

    @staticmethod
    def _swop_identity(ctx: TaskContext) -> tuple[list[dict], dict[str, str]]:
        """The SWOP's own identity files, for a profile node without `identity`."""
        mounts: list[dict[str, Any]] = []
        paths: dict[str, str] = {}
        for kind, attr, target in (("CERT", "cert", "/swarm-cert/cert.pem"),
                                   ("KEY", "key", "/swarm-cert/key.pem"),
                                   ("CAPATH", "capath", "/swarm-cert/capath"),
                                   ("CACERT", "cacert", "/swarm-cert/cacert.pem")):
            source = getattr(ctx.identity, attr, None)
            if source:
                mounts.append(mount("bind", str(Path(source).resolve()), target, True))
                paths[kind] = target
        return mounts, paths

    def _channel_name(self, ctx: TaskContext, node: NodeDef) -> str:
        return short_name(self.swop_uid, ctx.task.name, str(node.idx)) + "-channel"

    def _channel_volume(self, ctx: TaskContext, node: NodeDef) -> str:
        """A tmpfs volume shared by the SL and ML of `node`, for the channel socket."""
        name = self._channel_name(ctx, node)
        try:
            self.client.volumes.create(
                name=name, driver="local", labels=self._labels(ctx, "channel", node),
                driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "mode=1777"})
        except sdk_errors().APIError as exc:
            raise _failed(f"cannot create the channel volume of {node.sl_name}", exc) from None
        return name

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

    # -- ML ----------------------------------------------------------------------------------------

    def _ml_spec(self, ctx: TaskContext, node: NodeDef, image: str) -> dict[str, Any]:
        body = ctx.task.body
        env = merge_env({"PYTHONUNBUFFERED": "1"}, kv_pairs(body.get("Envvars")),
                        node.usrenvvars, {CHANNEL_ENV: CHANNEL_SOCKET})
        mounts = self._content_mounts(ctx, node)
        mounts.append(mount("volume", self._channel_name(ctx, node), CHANNEL_DIR))
        working_dir = str(body.get("WorkingDir") or "").strip() or None
        spec: dict[str, Any] = {
            "image": image, "name": node.ml_name,
            "entrypoint": words_of(body.get("Entrypoint"), "Body.Entrypoint"),
            "command": words_of(body.get("Command"), "Body.Command"),
            "working_dir": working_dir, "environment": env, "mounts": mounts,
            "user": self.user,
            "labels": {**labels_of(node.usrlabels), **self._labels(ctx, "ml", node)},
            "dns": list(ctx.profile.dns) or None, "detach": True}
        spec.update(self._network(ctx, node.usrnetworkopts, f"{node.path}.usrnetworkopts",
                                  node.ml_name))
        options = typed_kv(node.raw.get("usrcontaineropts")) if node.raw else {}
        spec.update(container_options(options or node.usrcontaineropts,
                                      f"{node.path}.usrcontaineropts"))
        return spec

    def _content_mounts(self, ctx: TaskContext, node: NodeDef) -> list[dict[str, Any]]:
        """PrivateContent (the node's `privatedata`) and the SharedContent mounts."""
        body = ctx.task.body
        mounts = []
        private = body.get("PrivateContent")
        if private:
            if not node.privatedata:
                raise TaskFailed(f"Body.PrivateContent needs {node.path}.privatedata in the "
                                 "profile")
            mounts.append(self._user_mount(ctx, node, node.privatedata_mtype, node.privatedata,
                                           str(private), f"{node.path}.privatedata"))
        for index, shared in enumerate(body.get("SharedContent") or []):
            where = f"Body.SharedContent[{index}]"
            if not isinstance(shared, Mapping) or not shared.get("Src") or not shared.get("Tgt"):
                raise TaskFailed(f"{where} needs Src and Tgt")
            mounts.append(self._user_mount(ctx, node, str(shared.get("MType") or "BIND"),
                                           str(shared["Src"]), str(shared["Tgt"]), where))
        return mounts

    def _user_mount(self, ctx: TaskContext, node: NodeDef, m_type: str, source: str,
                    target: str, where: str, read_only: bool = False) -> dict[str, Any]:
        """A BIND (host path; relative to the profile's directory) or VOLUME mount. A VOLUME
        named X is the node's own copy `X-<idx>` when SWARMCONTENT made one."""
        if not target.startswith("/"):
            raise TaskFailed(clip(f"{where}: the target {target} is not an absolute path",
                                  DESCRIPTION_LIMIT))
        target = posixpath.normpath(target)
        kind = str(m_type or "BIND").upper()
        if kind == "BIND":
            path = resolve_path(Path(source).expanduser(), Path(ctx.profile.source).parent)
            return mount("bind", str(path), target, read_only)
        if kind == "VOLUME":
            for name in (f"{source}-{node.idx}", source):
                if self._volume_exists(name):
                    return mount("volume", name, target, read_only)
            raise TaskFailed(clip(f"{where}: volume {source} does not exist on this host (a "
                                  "MAKE_SWARM_USER_CONTENT task makes it)", DESCRIPTION_LIMIT))
        raise TaskFailed(f"{where}: mType {m_type} is neither BIND nor VOLUME")

    # -- containers --------------------------------------------------------------------------------

    def _launch(self, ctx: TaskContext, spec: dict[str, Any], what: str) -> Any:
        """Create and start a container; a leftover of this SWOP with its name goes first."""
        name = spec["name"]
        self._free_name(ctx, name)
        errors = sdk_errors()
        try:
            container = self.client.containers.create(**spec)
            container.start()
        except errors.ImageNotFound:
            raise TaskFailed(f"{what} {name}: image {spec['image']} is not on this host") from None
        except errors.APIError as exc:
            raise _failed(f"cannot start {what} {name}", exc) from None
        ctx.log(f"started {what} container {name} ({spec['image']})")
        return container

    def _free_name(self, ctx: TaskContext, name: str) -> None:
        errors = sdk_errors()
        try:
            existing = self.client.containers.get(name)
        except errors.NotFound:
            return
        except errors.APIError as exc:
            raise _failed(f"cannot inspect container {name}", exc) from None
        labels = existing.labels or {}
        if labels.get("swci.swop") != self.swop_uid:
            raise TaskFailed(clip(f"a container named {name} already exists and was not started "
                                  "by this SWOP; remove it or rename the profile node",
                                  DESCRIPTION_LIMIT))
        ctx.log(f"removing container {name}, left over from task {labels.get('swci.task')}")
        try:
            existing.remove(force=True)
        except errors.NotFound:
            pass
        except errors.APIError as exc:
            raise _failed(f"cannot remove the old container {name}", exc) from None

    def _state(self, container: Any, what: str) -> tuple[str, int | None, bool]:
        """(status, exit code, killed for lack of memory) of a container, freshly read."""
        errors = sdk_errors()
        try:
            container.reload()
        except errors.NotFound:
            return "removed", None, False
        except errors.APIError as exc:
            raise _failed(f"cannot inspect {what}", exc) from None
        state = container.attrs.get("State") or {}
        return str(container.status), state.get("ExitCode"), bool(state.get("OOMKilled"))

    @staticmethod
    def _logs(container: Any, tail: int | str = "all") -> bytes | str:
        try:
            return container.logs(stdout=True, stderr=True, tail=tail)
        except sdk_errors().APIError:
            return b""

    def _tail(self, container: Any) -> str:
        return clip(as_text(self._logs(container, LOG_TAIL_LINES)).rstrip(), DETAIL_LIMIT)

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

    def _owned(self, ctx: TaskContext, kind: str, role: str | None = None) -> list[Any]:
        """This task's containers or volumes, found by label."""
        labels = [f"swci.swop={self.swop_uid}", f"swci.task={ctx.task.name}"]
        if role:
            labels.append(f"swci.role={role}")
        collection = getattr(self.client, kind)
        extra = {"all": True} if kind == "containers" else {}
        try:
            return list(collection.list(filters={"label": labels}, **extra))
        except sdk_errors().APIError as exc:
            ctx.log(f"cleanup: cannot list {kind}: {_explain(exc)}")
            return []

    def _retire(self, ctx: TaskContext, container: Any) -> None:
        """Stop a container and, unless ctx.keep, remove it; gone already is fine."""
        errors = sdk_errors()
        name = getattr(container, "name", "?")
        try:
            if container.status not in ENDED + ("created",):
                container.stop(timeout=STOP_SECONDS)
        except errors.NotFound:
            return
        except errors.APIError as exc:
            ctx.log(f"cleanup: cannot stop container {name}: {_explain(exc)}")
        if not ctx.keep:
            self._remove(ctx, container, f"container {name}")

    @staticmethod
    def _remove(ctx: TaskContext, thing: Any, what: str) -> None:
        errors = sdk_errors()
        try:
            thing.remove(force=True)
        except errors.NotFound:
            pass
        except errors.APIError as exc:
            ctx.log(f"cleanup: cannot remove {what}: {_explain(exc)}")


def _published_port(node: NodeDef) -> int | None:
    """The host port published to the SL's 30305: `slport`, else the port of `slfsservice`."""
    if node.slport:
        return int(node.slport)
    _host, sep, port = str(node.slfsservice or "").rpartition(":")
    return int(port) if sep and port.isdigit() else None


def _remove_scratch(workdir: Path, keep: bool) -> None:
    """Build and content scratch directories always; SL data directories unless `keep`."""
    if not workdir.is_dir():
        return
    for entry in workdir.glob("docker-*"):
        if keep and entry.name.startswith("docker-sl"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _tar_directory(source: Path, archive: Path) -> Path:
    """A tar of the files below `source`, named relative to it."""
    source.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(source.iterdir()):
            tar.add(entry, arcname=entry.name)
    return archive


def _extract_below_root(archive: Path, dest: Path) -> None:
    """Unpack a `get_archive` tar (all under one top directory) into `dest`, dropping that top
    directory; tarfile's "data" filter refuses links out of `dest` and special files."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            top, sep, rest = member.name.lstrip("/").partition("/")
            if not sep or not rest.strip("/"):
                continue
            member.name = rest
            if member.islnk():
                member.linkname = member.linkname.lstrip("/").partition("/")[2]
            members.append(member)
        dest.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(dest, members=members)
