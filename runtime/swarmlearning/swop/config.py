"""The SWOP's configuration: `swci run-swop` options (HPE's names), SWOP_* environment variables
and the profile's `apisrv` locator, which wins over --sn-ip/--sn-api-port when it is set."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from swarmlearning.defaults import SN_API_PORT
from swarmlearning.identity.options import add_identity_arguments, identity_from_arguments
from swarmlearning.identity.tls import Identity
from swarmlearning.sl.config import SLConfigError, env_flag
from swarmlearning.swop.profile import Profile, ProfileError, load_profile

RUNTIMES = ("auto", "process", "docker")


class SwopConfigError(ValueError):
    """A bad option, environment variable or profile; the message says which."""


@dataclass(frozen=True)
class SwopConfig:
    """Everything a SWOP needs to start."""

    identity: Identity
    usr_dir: Path
    profile_path: Path
    profile: Profile
    data_dir: Path
    sn_ip: str = "127.0.0.1"
    sn_api_port: int = SN_API_PORT
    host_ip: str = "127.0.0.1"
    name: str = "swop"
    runtime: str = "auto"
    keep: bool = False
    poll_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    sl_image: str = "swci/sl:latest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run-swop options."""
    parser.add_argument("--usr-dir", required=True, metavar="DIR",
                        help="the user directory; the profile is read from it")
    parser.add_argument("--profile-file-name", default=os.environ.get("SWOP_PROFILE"),
                        metavar="FILE", help="the SWOP profile, in --usr-dir (default "
                                             "$SWOP_PROFILE)")
    parser.add_argument("--sn-ip", default="127.0.0.1", metavar="IP",
                        help="this SWOP's SN, unless the profile's apisrv names one "
                             "(default %(default)s)")
    parser.add_argument("--sn-api-port", type=int, default=SN_API_PORT, metavar="P",
                        help="the SN's API port (default %(default)s)")
    parser.add_argument("--sn-api-service", default=None, metavar="HOST[:PORT]",
                        help="the SN's API as a service name, instead of --sn-ip/--sn-api-port")
    parser.add_argument("--host-ip", default="127.0.0.1", metavar="IP",
                        help="where the SL nodes this SWOP starts listen (default %(default)s)")
    add_identity_arguments(parser)
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="the SWOP's workspace: tasks, environments, volumes, logs "
                             "(default USR_DIR/swop-data/NAME)")
    parser.add_argument("--name", default="swop", help="node name shown by LIST NODES")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="process: local processes; docker: the Docker engine; auto: as the "
                             "profile's resourcemgr says, docker when an engine is reachable "
                             "(default %(default)s)")
    parser.add_argument("--sl-image", default="swci/sl:latest", metavar="IMAGE",
                        help="image of SL containers in the docker runtime")
    parser.add_argument("--docker-socket-file", default=None, metavar="SOCK",
                        help="the Docker (or Podman) socket, for the docker runtime")
    parser.add_argument("--docker-group-id", default=None, metavar="GID",
                        help="accepted for HPE compatibility; not needed here")
    parser.add_argument("--swop-uid", default=None, metavar="UID",
                        help="accepted for HPE compatibility; ML programs run as this user")
    parser.add_argument("--poll", type=float, default=1.0, metavar="SECONDS",
                        help="how often the taskrunner is read (default %(default)s)")
    parser.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS",
                        help="interval of the liveness report to the SN (default %(default)s)")


def _service(value: str, default_port: int) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit():
        return host, int(port)
    return value, default_port


def from_arguments(args: argparse.Namespace) -> SwopConfig:
    """A SwopConfig from parsed run-swop options, the environment and the profile."""
    if not args.profile_file_name:
        raise SwopConfigError("run-swop needs --profile-file-name (or SWOP_PROFILE)")
    usr_dir = Path(args.usr_dir).resolve()
    if not usr_dir.is_dir():
        raise SwopConfigError(f"--usr-dir {args.usr_dir}: no such directory")
    profile_path = usr_dir / args.profile_file_name
    try:
        profile = load_profile(profile_path)
        identity = identity_from_arguments(args, "run-swop")
        keep = env_flag("SWOP_KEEP_CONTAINERS", False)
    except (ProfileError, SLConfigError, ValueError) as exc:
        raise SwopConfigError(str(exc)) from None
    sn_ip, sn_port = args.sn_ip, args.sn_api_port
    if args.sn_api_service:
        sn_ip, sn_port = _service(args.sn_api_service, sn_port)
    if profile.apisrv_service:
        sn_ip, sn_port = _service(profile.apisrv_service, sn_port)
    if profile.apisrv_host:
        sn_ip = profile.apisrv_host
    if profile.apisrv_port:
        sn_port = int(profile.apisrv_port)
    if args.docker_socket_file:
        os.environ["DOCKER_HOST"] = f"unix://{Path(args.docker_socket_file).resolve()}"
    data_dir = Path(args.data_dir).resolve() if args.data_dir else (
        usr_dir / "swop-data" / args.name)
    return SwopConfig(identity=identity, usr_dir=usr_dir, profile_path=profile_path,
                      profile=profile, data_dir=data_dir, sn_ip=sn_ip, sn_api_port=sn_port,
                      host_ip=args.host_ip, name=args.name, runtime=args.runtime, keep=keep,
                      poll_seconds=args.poll, heartbeat_seconds=args.heartbeat,
                      sl_image=args.sl_image)
