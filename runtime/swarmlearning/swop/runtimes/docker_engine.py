"""The docker runtime's hold on the engine: `DockerEngine`, the base of `DockerRuntime`, reaches
the engine through the Docker SDK client, labels what a task creates, looks images up, starts,
inspects and reads containers, and finds by label and clears away what a task left behind. It
raises TaskFailed with the engine's own words for every SDK error, and gets the SDK's exception
classes from the runtime (`_errors`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from swarmlearning.swop.profile import NodeDef
from swarmlearning.swop.runtimes.docker_specs import as_text
from swarmlearning.swop.tasks import DESCRIPTION_LIMIT, DETAIL_LIMIT, TaskContext, TaskFailed, clip

STOP_SECONDS = 10
LOG_TAIL_LINES = 40
ENDED = ("exited", "dead", "removed")


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


class DockerEngine:
    """The client, labels, images, containers and cleanup that every docker task shares.

    `_client` (None until first use), `swop_uid` and `helper_image` are set by DockerRuntime.
    """

    _client: Any
    swop_uid: str
    helper_image: str

    def _errors(self) -> Any:
        """The SDK's exception classes (`docker.errors`, or stand-ins without the SDK)."""
        raise NotImplementedError

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

    def _require_image(self, ref: str, message: str) -> Any:
        errors = self._errors()
        try:
            return self.client.images.get(ref)
        except errors.NotFound:
            raise TaskFailed(clip(message, DESCRIPTION_LIMIT)) from None
        except errors.APIError as exc:
            raise _failed(f"cannot inspect image {ref}", exc) from None

    # -- containers --------------------------------------------------------------------------------

    def _launch(self, ctx: TaskContext, spec: dict[str, Any], what: str) -> Any:
        """Create and start a container; a leftover of this SWOP with its name goes first."""
        name = spec["name"]
        self._free_name(ctx, name)
        errors = self._errors()
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
        errors = self._errors()
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
        errors = self._errors()
        try:
            container.reload()
        except errors.NotFound:
            return "removed", None, False
        except errors.APIError as exc:
            raise _failed(f"cannot inspect {what}", exc) from None
        state = container.attrs.get("State") or {}
        return str(container.status), state.get("ExitCode"), bool(state.get("OOMKilled"))

    def _logs(self, container: Any, tail: int | str = "all") -> bytes | str:
        try:
            return container.logs(stdout=True, stderr=True, tail=tail)
        except self._errors().APIError:
            return b""

    def _tail(self, container: Any) -> str:
        return clip(as_text(self._logs(container, LOG_TAIL_LINES)).rstrip(), DETAIL_LIMIT)

    # -- cleanup -----------------------------------------------------------------------------------

    def _owned(self, ctx: TaskContext, kind: str, role: str | None = None) -> list[Any]:
        """This task's containers or volumes, found by label."""
        labels = [f"swci.swop={self.swop_uid}", f"swci.task={ctx.task.name}"]
        if role:
            labels.append(f"swci.role={role}")
        collection = getattr(self.client, kind)
        extra = {"all": True} if kind == "containers" else {}
        try:
            return list(collection.list(filters={"label": labels}, **extra))
        except self._errors().APIError as exc:
            ctx.log(f"cleanup: cannot list {kind}: {_explain(exc)}")
            return []

    def _retire(self, ctx: TaskContext, container: Any) -> None:
        """Stop a container and, unless ctx.keep, remove it; gone already is fine."""
        errors = self._errors()
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

    def _remove(self, ctx: TaskContext, thing: Any, what: str) -> None:
        errors = self._errors()
        try:
            thing.remove(force=True)
        except errors.NotFound:
            pass
        except errors.APIError as exc:
            ctx.log(f"cleanup: cannot remove {what}: {_explain(exc)}")


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
