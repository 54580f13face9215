"""The SL's configuration: one explicit object, from `swci run-sl` options (HPE's names) and
HPE's SL_* environment variables."""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from swarmlearning.defaults import SL_FS_PORT, SN_API_PORT
from swarmlearning.identity.options import add_identity_arguments, identity_from_arguments
from swarmlearning.identity.tls import Identity

DEFAULT_FS_PORT = SL_FS_PORT
MAX_SOCKET_PATH = 100
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class SLConfigError(ValueError):
    """A bad option or environment variable; the message names it."""


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in TRUE_WORDS:
        return True
    if raw.strip().lower() in FALSE_WORDS:
        return False
    raise SLConfigError(f"{name}={raw!r}: expected True or False")


def env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SLConfigError(f"{name}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise SLConfigError(f"{name}={raw!r}: must not be negative")
    return value


@dataclass(frozen=True)
class SLConfig:
    """Everything an SL needs to start."""

    identity: Identity
    data_dir: Path
    sn_ip: str = "127.0.0.1"
    sn_api_port: int = SN_API_PORT
    host_ip: str = "127.0.0.1"
    fs_port: int = DEFAULT_FS_PORT
    name: str = "sl"
    channel: Path | None = None
    ml_cmd: list[str] = field(default_factory=list)
    ml_env: dict[str, str] = field(default_factory=dict)
    make_me_admin: bool = True
    leader_failure_timeout: float = 600.0
    wait_full_quorum: float = 30.0
    ram_intensive: bool = True
    merge_backend: str = "numpy"
    outlier_factor: float = 4.0
    heartbeat_seconds: float = 5.0
    max_blob_bytes: int = 8 << 30

    @property
    def channel_path(self) -> Path:
        return self.channel or self.data_dir / "channel.sock"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-sl options."""
    parser.add_argument("--sn-ip", default="127.0.0.1", metavar="IP",
                        help="address of this SL's SN (default %(default)s)")
    parser.add_argument("--sn-api-port", type=int, default=SN_API_PORT, metavar="P",
                        help="the SN's API port (default %(default)s)")
    parser.add_argument("--host-ip", default="127.0.0.1", metavar="IP",
                        help="this SL's address: its file server listens there and peers "
                             "reach it there (default %(default)s)")
    parser.add_argument("--sl-fs-port", type=int, default=DEFAULT_FS_PORT, metavar="P",
                        help="file server port (default %(default)s)")
    add_identity_arguments(parser)
    parser.add_argument("--data-dir", default="./sl-data", metavar="DIR",
                        help="weights, the node UID and the channel socket "
                             "(default %(default)s)")
    parser.add_argument("--name", default="sl", help="node name shown by LIST NODES")
    parser.add_argument("--channel", default=None, metavar="PATH",
                        help="the ML channel socket (default DATA_DIR/channel.sock); the ML "
                             "program finds it in SL_REQUEST_CHANNEL")
    parser.add_argument("--ml-cmd", default=None, metavar="COMMAND",
                        help="run this ML program beside the SL, with the channel in its "
                             "environment; the SL exits with it")
    parser.add_argument("--ml-e", action="append", default=[], metavar="K=V",
                        help="an environment variable for the ML program (repeatable)")
    parser.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS",
                        help="interval of the liveness report to the SN (default %(default)s)")


def from_arguments(args: argparse.Namespace) -> SLConfig:
    """An SLConfig from parsed run-sl options and the SL_* environment variables."""
    try:
        identity = identity_from_arguments(args, "run-sl")
    except ValueError as exc:
        raise SLConfigError(str(exc)) from None
    ml_env = {}
    for item in args.ml_e:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SLConfigError(f"--ml-e {item!r}: expected NAME=VALUE")
        ml_env[name] = value
    data_dir = Path(args.data_dir).resolve()
    channel = Path(args.channel).resolve() if args.channel else None
    config = SLConfig(
        identity=identity, data_dir=data_dir, sn_ip=args.sn_ip, sn_api_port=args.sn_api_port,
        host_ip=args.host_ip, fs_port=args.sl_fs_port, name=args.name, channel=channel,
        ml_cmd=shlex.split(args.ml_cmd) if args.ml_cmd else [], ml_env=ml_env,
        make_me_admin=env_flag("SL_MAKE_ME_ADMIN", True),
        leader_failure_timeout=env_seconds("SL_LEADER_FAILURE_BASE_TIMEOUT", 600.0),
        wait_full_quorum=env_seconds("SL_WAIT_FOR_FULL_QUORUM_SECONDS", 30.0),
        ram_intensive=env_flag("SL_RAM_INTENSIVE", True),
        merge_backend=_backend(os.environ.get("SL_MERGE_BACKEND", "numpy")),
        outlier_factor=_outlier_factor(os.environ.get("SL_MERGE_OUTLIER_FACTOR")),
        max_blob_bytes=_blob_bytes(os.environ.get("SL_MAX_BLOB_BYTES")),
        heartbeat_seconds=args.heartbeat)
    if len(str(config.channel_path)) > MAX_SOCKET_PATH:
        raise SLConfigError(f"the channel socket path {config.channel_path} is longer than "
                            f"{MAX_SOCKET_PATH} characters (a Unix socket limit); pass a "
                            "shorter --channel")
    return config


def _backend(value: str) -> str:
    """SL_MERGE_BACKEND: numpy (the default: one thread, no start-up cost, steady when the
    cores are busy), torch (both cores on an idle host; loads PyTorch at the first merge) or
    auto (torch for large tensors when it is installed)."""
    from swarmlearning.merge import BACKENDS

    backend = value.strip().lower()
    if backend not in BACKENDS:
        raise SLConfigError(f"SL_MERGE_BACKEND={value!r}: use one of {', '.join(BACKENDS)}")
    return backend


def _outlier_factor(value: str | None) -> float:
    """SL_MERGE_OUTLIER_FACTOR: with coordmedian or geomedian, a leader leaves out the
    contributions farther from the merged model than this many times the median distance
    (default 4; 0 leaves none out). Every peer that may lead should have the same."""
    from swarmlearning.merge import DEFAULT_OUTLIER_FACTOR

    if value is None or not value.strip():
        return DEFAULT_OUTLIER_FACTOR
    try:
        factor = float(value)
    except ValueError:
        raise SLConfigError(f"SL_MERGE_OUTLIER_FACTOR={value!r}: expected a number such as 4, "
                            "or 0 to leave no contribution out") from None
    if not factor >= 0 or factor == float("inf") or 0 < factor <= 1:
        raise SLConfigError(f"SL_MERGE_OUTLIER_FACTOR={value!r}: use 0 (off) or a number "
                            "over 1 (the median distance itself is never far)")
    return factor


def _blob_bytes(value: str | None) -> int:
    """SL_MAX_BLOB_BYTES: the largest weights blob this SL takes from its ML program or fetches
    from a peer (default 8 GiB); a leader rejects a larger contribution."""
    if value is None or not value.strip():
        return SLConfig.max_blob_bytes
    try:
        size = int(value)
    except ValueError:
        raise SLConfigError(f"SL_MAX_BLOB_BYTES={value!r}: expected a whole number of "
                            "bytes") from None
    if size < 1024:
        raise SLConfigError(f"SL_MAX_BLOB_BYTES={value!r}: must be at least 1024 bytes")
    return size
