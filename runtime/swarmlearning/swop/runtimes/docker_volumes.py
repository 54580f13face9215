"""Docker volumes for the docker runtime: `DockerVolumes` carries out MAKE_SWARM_USER_CONTENT
(the OpsList applied in a scratch directory, its files copied into the volumes that
`content.opslist.volume_names` names: one for BUILDCONTENT, one per profile node for
SWARMCONTENT) and copies a volume's files out again for a build context. The engine offers no
direct access to volume files, so both go through a short-lived helper container that is
created, never started, with the volume mounted."""

from __future__ import annotations

import contextlib
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swarmlearning.swop.runtimes.docker_engine import DockerEngine, _check_stop, _failed
from swarmlearning.swop.runtimes.docker_specs import mount
from swarmlearning.swop.tasks import DESCRIPTION_LIMIT, DETAIL_LIMIT, TaskContext, TaskFailed, clip

VOLUME_MOUNT = "/swci-volume"


class DockerVolumes(DockerEngine):
    """MAKE_SWARM_USER_CONTENT, and the volume lookups and copies the other tasks need."""

    # -- MAKE_SWARM_USER_CONTENT -------------------------------------------------------------------

    def make_content(self, ctx: TaskContext) -> str:
        from swarmlearning.swop.content.common import ContentError
        from swarmlearning.swop.content.opslist import run_ops, volume_names

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

    # -- volumes, through a helper container ------------------------------------------------------

    @contextlib.contextmanager
    def _helper(self, ctx: TaskContext, volume: str) -> Iterator[Any]:
        """A created (never started) container with `volume` mounted at VOLUME_MOUNT."""
        errors = self._errors()
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
        errors = self._errors()
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
        errors = self._errors()
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
        errors = self._errors()
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
        errors = self._errors()
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
