"""What the docker runtime asks of the engine, worked out without one: BuildSteps as a
Dockerfile, image references and registry credentials for PULL_IMAGE, and HPE's profile
container options (`usrcontaineropts`, labels, network options, environment layers) as Docker
SDK arguments. Pure functions, so each mapping is tested without an engine."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmlearning.swop.profile import NodeDef
from swarmlearning.swop.tasks import (
    DESCRIPTION_LIMIT,
    TaskFailed,
    clip,
)

DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


# -- MAKE_USER_CONTAINER: BuildSteps as a Dockerfile --------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction and the BuildSteps items it was written in."""

    first: int
    last: int
    text: str

    @property
    def where(self) -> str:
        if self.first == self.last:
            return f"BuildSteps[{self.first}]"
        return f"BuildSteps[{self.first}..{self.last}]"


@dataclass(frozen=True)
class Dockerfile:
    text: str
    instructions: tuple[Instruction, ...]


def _step_line(item: object) -> str:
    """One BuildSteps item as a Dockerfile line; HPE writes blank lines as `' '`."""
    if item is None:
        return ""
    line = str(item)
    return "" if not line.strip() else line


def render_dockerfile(steps: object) -> Dockerfile:
    """The Dockerfile of an INLINE build: one line per BuildSteps item, a `\\` at the end of an
    item continuing the instruction on the next one (as in any Dockerfile). The instruction list
    counts as the builder's `Step N/M` does: blank and comment lines are not instructions."""
    if not isinstance(steps, list) or not steps:
        raise TaskFailed("Body.BuildSteps must be a non-empty list of Dockerfile lines")
    lines = [_step_line(item) for item in steps]
    instructions: list[Instruction] = []
    start: int | None = None
    parts: list[str] = []
    for index, line in enumerate(lines):
        bare = line.strip()
        if not bare or bare.startswith("#"):
            continue
        if start is None:
            start, parts = index, []
        continued = bare.endswith("\\")
        parts.append(bare[:-1].strip() if continued else bare)
        if not continued:
            instructions.append(Instruction(start, index, " ".join(p for p in parts if p)))
            start = None
    if start is not None:
        instructions.append(Instruction(start, len(lines) - 1, " ".join(p for p in parts if p)))
    return Dockerfile("\n".join(lines) + "\n", tuple(instructions))


def stream_lines(chunk: Mapping[str, Any]) -> list[str]:
    text = chunk.get("stream")
    if not isinstance(text, str):
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()]


# -- PULL_IMAGE: references and credentials -----------------------------------------------------


def image_ref(body: Mapping[str, Any]) -> tuple[str, str]:
    """(repository, tag) of a PULL_IMAGE body: `OrgAndReg + RepoName` and `Tag`."""
    repo = str(body.get("RepoName") or "").strip()
    if not repo:
        raise TaskFailed("Body.RepoName is empty; PULL_IMAGE needs the repository to pull")
    org = str(body.get("OrgAndReg") or "").strip()
    if org and not org.endswith("/"):
        org += "/"
    tag = str(body.get("Tag") or "latest").strip()
    return org + repo, tag


def registry_of(repository: str) -> str:
    """The registry host of a repository; Docker Hub (`docker.io`) when none is named."""
    first, sep, _rest = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return _registry_host(first)
    return DOCKER_HUB


def _registry_host(text: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `Hub.Example.net` -> `hub.example.net`."""
    host = re.sub(r"^[a-z]+://", "", text.strip().lower()).split("/")[0]
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def registry_auth(auth: object, registry: str, base_dir: Path) -> dict[str, str] | None:
    """The SDK's `auth_config` for a PULL_IMAGE `Auth`: None (the engine's own credentials),
    `{Username, Password}`, or the path of a Docker `config.json` (relative to `base_dir`),
    whose `auths` entry for `registry` gives `auth` (base64 `user:password`), `username` and
    `password`, or `identitytoken`. Credential helpers are not run."""
    if auth is None or auth == "":
        return None
    if isinstance(auth, Mapping):
        fields = {str(key).lower(): value for key, value in auth.items()}
        if not fields.get("username") or fields.get("password") is None:
            raise TaskFailed("Body.Auth needs Username and Password (or a config.json path)")
        return {"username": str(fields["username"]), "password": str(fields["password"])}
    if not isinstance(auth, str):
        raise TaskFailed("Body.Auth must be null, a config.json path or {Username, Password}")
    return _auth_from_config(resolve_path(Path(auth).expanduser(), base_dir), registry)


def _auth_from_config(path: Path, registry: str) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskFailed(f"Body.Auth: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaskFailed(clip(f"Body.Auth: cannot read {path}: {exc}", DESCRIPTION_LIMIT)) from None
    entries = data.get("auths") if isinstance(data, Mapping) else None
    for key, entry in (entries or {}).items():
        if _registry_host(str(key)) == registry and isinstance(entry, Mapping):
            found = _auth_entry(entry)
            if found:
                return found
    if isinstance(data, Mapping) and (data.get("credsStore") or data.get("credHelpers")):
        raise TaskFailed(f"Body.Auth: {path} keeps the {registry} credentials in a credential "
                         "helper, which SWOP does not run; give {Username, Password}")
    raise TaskFailed(f"Body.Auth: {path} holds no credentials for {registry}")


def _auth_entry(entry: Mapping[str, Any]) -> dict[str, str] | None:
    if entry.get("identitytoken"):
        return {"identitytoken": str(entry["identitytoken"])}
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise TaskFailed("Body.Auth: an `auth` entry is not base64 of user:password") from None
        if sep:
            return {"username": user, "password": password}
    if entry.get("username") and entry.get("password") is not None:
        return {"username": str(entry["username"]), "password": str(entry["password"])}
    return None


def split_ref(ref: str) -> tuple[str, str | None]:
    """`host:5000/org/img:1.0` -> (`host:5000/org/img`, `1.0`); no tag -> (ref, None)."""
    name, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        return name, tag
    return ref, None


# -- RUN_SWARM: container options --------------------------------------------------------------


def labels_of(value: object) -> dict[str, str]:
    """Profile labels (`sllabels`, `usrlabels`): a mapping, or a list of names (empty values)
    and single-key mappings."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, str) or not isinstance(value, Iterable):
        return {str(value): ""}
    labels: dict[str, str] = {}
    for item in value:
        labels.update(labels_of(item))
    return labels


def gpu_request(value: object, where: str = "gpus") -> dict[str, Any]:
    """`docker run --gpus VALUE` as an Engine API DeviceRequest: `all` (every GPU), a count
    (`2`), `device=3,5` (those GPUs), and optionally `driver=...` and `capabilities=...`."""
    request: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": [], "Capabilities": []}
    capabilities = ["gpu"]
    key: str | None = None
    for token in str(value).strip().strip("'\"").split(","):
        token = token.strip().strip("'\"")
        if not token:
            continue
        name, sep, item = token.partition("=")
        if sep:
            key, item = name.strip().lower(), item.strip()
        elif key in ("device", "capabilities"):
            item = token  # a further ID of `device=3,5`
        else:
            key, item = "count", token  # `all` or a number of GPUs
        if key == "device":
            request["DeviceIDs"].append(item)
        elif key == "capabilities":
            capabilities.append(item)
        elif key == "driver":
            request["Driver"] = item
        elif key == "count" and item == "all":
            request["Count"] = -1
        elif key == "count" and item.isdigit():
            request["Count"] = int(item)
        else:
            raise TaskFailed(clip(f"{where}: cannot read {value!r} (expected all, a number of "
                                  "GPUs or device=ID[,ID...])", DESCRIPTION_LIMIT))
    request["Capabilities"] = [list(dict.fromkeys(capabilities))]
    return request


def _as_list(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _as_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise TaskFailed(f"{where}: expected True or False, got {value!r}")


_CONTAINER_OPTIONS = {
    "device": "devices", "ipc": "ipc_mode", "shm-size": "shm_size", "group-add": "group_add",
    "cap-add": "cap_add", "security-opt": "security_opt", "privileged": "privileged",
}
_LIST_OPTIONS = ("devices", "group_add", "cap_add", "security_opt")


def container_options(options: Mapping[str, Any], where: str = "usrcontaineropts") -> dict:
    """`usrcontaineropts` as SDK `containers.create` arguments. NVIDIA: `gpus` ->
    device_requests. AMD: `device`, `ipc`, `shm-size`, `group-add`, `cap-add`, `security-opt`
    (lists, or comma-separated text) and `privileged`. Other keys are refused."""
    result: dict[str, Any] = {}
    for key, value in options.items():
        name = str(key).strip().lower().replace("_", "-")
        if value is None:
            continue
        if name == "gpus":
            result["device_requests"] = [gpu_request(value, f"{where}.gpus")]
        elif name not in _CONTAINER_OPTIONS:
            known = ", ".join(["gpus", *_CONTAINER_OPTIONS])
            raise TaskFailed(clip(f"{where}: option {key!r} is not supported (supported: "
                                  f"{known})", DESCRIPTION_LIMIT))
        elif _CONTAINER_OPTIONS[name] in _LIST_OPTIONS:
            result[_CONTAINER_OPTIONS[name]] = _as_list(value)
        elif name == "privileged":
            result["privileged"] = _as_bool(value, f"{where}.privileged")
        else:
            result[_CONTAINER_OPTIONS[name]] = str(value)
    return result


def typed_kv(value: object) -> dict[str, Any]:
    """A K:V list as written in the YAML, values keeping their types (lists stay lists)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    result: dict[str, Any] = {}
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, Mapping):
            result.update(item)
        else:
            result[str(item)] = None
    return result


def endpoint_config(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`slnetworkopts`/`usrnetworkopts` as an Engine API EndpointSettings: `ip` (HPE's static
    IPv4 address), `ipv6`, `aliases`."""
    ipam: dict[str, str] = {}
    endpoint: dict[str, Any] = {}
    for key, value in options.items():
        name = str(key).strip().lower()
        if value is None:
            continue
        if name in ("ip", "ipv4", "ipv4_address"):
            ipam["IPv4Address"] = str(value)
        elif name in ("ipv6", "ipv6_address"):
            ipam["IPv6Address"] = str(value)
        elif name in ("alias", "aliases"):
            endpoint["Aliases"] = _as_list(value)
        else:
            raise TaskFailed(f"{where}: option {key!r} is not supported (supported: ip, ipv6, "
                             "aliases)")
    if ipam:
        endpoint["IPAMConfig"] = ipam
    return endpoint


def mount(kind: str, source: str, target: str, read_only: bool = False) -> dict[str, Any]:
    """An Engine API mount (what `docker.types.Mount` builds)."""
    return {"Type": kind, "Source": source, "Target": target, "ReadOnly": read_only}


def resolve_path(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else (base_dir / path).resolve()


def sub_path(node: NodeDef, index: int) -> str | None:
    """The `subPath` of `identity[index]`, which NodeDef does not carry (read from raw)."""
    items = node.raw.get("identity") if isinstance(node.raw, Mapping) else None
    try:
        value = items[index]["attribute"].get("subPath")  # type: ignore[index]
    except (TypeError, IndexError, KeyError, AttributeError):
        return None
    return str(value) if value else None


def words_of(value: object, where: str) -> list[str] | None:
    if value is None or not str(value).strip():
        return None
    try:
        return shlex.split(str(value))
    except ValueError as exc:
        raise TaskFailed(f"{where}: cannot split it into words: {exc}") from None


def short_name(*parts: str) -> str:
    """A Docker object name, unique for `parts`."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
    return f"swci-{digest}"


def as_text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data or "")
