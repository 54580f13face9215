"""The containers of RUN_SWARM's SL/ML pairs, as Docker SDK `containers.create` arguments:
`DockerPairs` works out, for one profile `slnodedef`, the SL container (image `sl_image`, its
identity, data directory, advertised address and published port) and the ML container (the
task's Entrypoint, Command, WorkingDir and Envvars with the node's own settings, and its
PrivateContent and SharedContent mounts), the profile network both join, and the tmpfs volume
at /swarm-channel that the pair shares for the SL's channel socket (SL_REQUEST_CHANNEL)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmlearning.defaults import SL_FS_PORT
from swarmlearning.swop.profile import NodeDef, kv_pairs, merge_env
from swarmlearning.swop.runtimes.docker_engine import _failed
from swarmlearning.swop.runtimes.docker_specs import (
    container_options,
    endpoint_config,
    labels_of,
    mount,
    resolve_path,
    short_name,
    sub_path,
    typed_kv,
    words_of,
)
from swarmlearning.swop.runtimes.docker_volumes import DockerVolumes
from swarmlearning.swop.tasks import DESCRIPTION_LIMIT, TaskContext, TaskFailed, clip

SL_ENTRYPOINT = ["python3", "-m", "swarmlearning.sl"]
SL_DATA_DIR = "/platform/swarm/data"
CHANNEL_DIR = "/swarm-channel"
CHANNEL_SOCKET = f"{CHANNEL_DIR}/ch.sock"
CHANNEL_ENV = "SL_REQUEST_CHANNEL"
IDENTITY_FLAGS = {"CERT": "--cert", "KEY": "--key", "CAPATH": "--capath", "CACERT": "--cacert"}


class DockerPairs(DockerVolumes):
    """The SL and ML container specs of RUN_SWARM; `sl_image` and `user` are set by
    DockerRuntime."""

    sl_image: str
    user: str | None

    # -- the network -------------------------------------------------------------------------------

    def _check_network(self, ctx: TaskContext) -> None:
        network = ctx.profile.network
        if not network or network in ("host", "bridge"):
            return
        errors = self._errors()
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
        except self._errors().APIError as exc:
            raise _failed(f"cannot create the channel volume of {node.sl_name}", exc) from None
        return name

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


def _published_port(node: NodeDef) -> int | None:
    """The host port published to the SL's SL_FS_PORT: `slport`, else the port of `slfsservice`."""
    if node.slport:
        return int(node.slport)
    _host, sep, port = str(node.slfsservice or "").rpartition(":")
    return int(port) if sep and port.isdigit() else None
