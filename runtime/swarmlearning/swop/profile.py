"""A SWOP profile (HPE's profile YAML), checked against profile.schema.json and read into plain
objects. Problems name the file, line, column and field path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmlearning.schemas import DefinitionError, validate_document


class ProfileError(ValueError):
    """The profile is missing or invalid; the message lists every problem with its place."""


def kv_pairs(value: Any) -> dict[str, str | None]:
    """HPE's K:V lists (`[A: 1, B: x]`, block or flow style, or a plain mapping) as a dict of
    strings; a null value stays None (meaning: leave the variable unset)."""
    if value is None:
        return {}
    items: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        for entry in value:
            if isinstance(entry, Mapping):
                items.extend(entry.items())
            else:
                items.append((entry, None))
    return {str(k): None if v is None else env_text(v) for k, v in items}


def merge_env(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Environment layers, later ones winning; a None value removes the variable."""
    env: dict[str, str] = {}
    for layer in layers:
        for name, value in layer.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
    return env


def env_text(value: Any) -> str:
    """A YAML scalar as an environment value: True/False as Python writes them, lists joined."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list | tuple):
        return ",".join(env_text(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class IdentityMount:
    """One `identity[].attribute`: a key, certificate or CA path for an SL."""

    a_type: str
    m_type: str
    src: str
    tgt: str
    path: str


@dataclass(frozen=True)
class NodeDef:
    """One `nodes[].slnodedef`: an SL and ML pair this SWOP starts for RUN_SWARM."""

    idx: int
    path: str
    identity: tuple[IdentityMount, ...] = ()
    slhostname: str | None = None
    slhostip: str | None = None
    slport: int | None = None
    slfsservice: str | None = None
    privatedata: str | None = None
    privatedata_mtype: str = "BIND"
    slenvvars: dict[str, str | None] = field(default_factory=dict)
    usrhostname: str | None = None
    usrenvvars: dict[str, str | None] = field(default_factory=dict)
    usrcontaineropts: dict[str, str | None] = field(default_factory=dict)
    sllabels: Any = None
    usrlabels: Any = None
    slnetworkopts: dict[str, str | None] = field(default_factory=dict)
    usrnetworkopts: dict[str, str | None] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sl_name(self) -> str:
        return self.slhostname or f"sl{self.idx + 1}"

    @property
    def ml_name(self) -> str:
        return self.usrhostname or f"user{self.idx + 1}"


@dataclass(frozen=True)
class Profile:
    """A whole SWOP profile."""

    source: str
    groupname: str
    taskrunner: str
    mgrtype: str
    network: str | None
    apisrv_host: str | None
    apisrv_port: int | None
    apisrv_service: str | None
    envvars: dict[str, str | None]
    dns: tuple[str, ...]
    nodes: tuple[NodeDef, ...]
    raw: Mapping[str, Any] = field(default_factory=dict)


def load_profile(path: Path) -> Profile:
    """Read, validate and convert a profile file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: the SWOP profile does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read the SWOP profile: {exc}") from None
    return parse_profile(text, str(path))


def parse_profile(text: str, source: str) -> Profile:
    try:
        document = validate_document(text, source, "profile")
    except DefinitionError as exc:
        raise ProfileError("invalid SWOP profile:\n" + "\n".join(
            f"  {problem}" for problem in exc.problems)) from None
    return _profile(document, source)


def _profile(doc: Mapping[str, Any], source: str) -> Profile:
    locator = ((doc.get("apisrv") or {}).get("locator")) or {}
    nodes = []
    for index, entry in enumerate(doc.get("nodes") or []):
        nodes.append(_node(entry["slnodedef"], f"nodes[{index}].slnodedef"))
    indexes = [node.idx for node in nodes]
    if len(set(indexes)) != len(indexes):
        raise ProfileError(f"{source}: nodes: each slnodedef needs its own idx, found "
                           f"{sorted(indexes)}")
    manager = (doc.get("resourcemgr") or {}).get("mgrtype") or "DOCKER"
    return Profile(source=source, groupname=str(doc["groupname"]),
                   taskrunner=str(doc["taskrunner"]), mgrtype=str(manager),
                   network=doc.get("network"), apisrv_host=locator.get("host"),
                   apisrv_port=locator.get("port"), apisrv_service=locator.get("service"),
                   envvars=kv_pairs(doc.get("envvars")),
                   dns=tuple(str(d) for d in doc.get("dns") or ()),
                   nodes=tuple(sorted(nodes, key=lambda node: node.idx)), raw=doc)


def _node(d: Mapping[str, Any], path: str) -> NodeDef:
    identity = []
    for index, item in enumerate(d.get("identity") or []):
        attribute = item.get("attribute") or {}
        identity.append(IdentityMount(a_type=str(attribute.get("aType")),
                                      m_type=str(attribute.get("mType")),
                                      src=str(attribute.get("src")),
                                      tgt=str(attribute.get("tgt")),
                                      path=f"{path}.identity[{index}].attribute"))
    private = d.get("privatedata") or {}
    return NodeDef(
        idx=int(d["idx"]), path=path, identity=tuple(identity),
        slhostname=d.get("slhostname"), slhostip=d.get("slhostip"), slport=d.get("slport"),
        slfsservice=d.get("slfsservice"), privatedata=private.get("src"),
        privatedata_mtype=str(private.get("mType") or "BIND"),
        slenvvars=kv_pairs(d.get("slenvvars")), usrhostname=d.get("usrhostname"),
        usrenvvars=kv_pairs(d.get("usrenvvars")),
        usrcontaineropts=kv_pairs(d.get("usrcontaineropts")),
        sllabels=d.get("sllabels"), usrlabels=d.get("usrlabels"),
        slnetworkopts=kv_pairs(d.get("slnetworkopts")),
        usrnetworkopts=kv_pairs(d.get("usrnetworkopts")), raw=d)
