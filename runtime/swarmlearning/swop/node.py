"""`swci run-swop`: options, the runtime choice, signals and the operator's life."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Callable

from swarmlearning.lifecycle import capture_signals
from swarmlearning.swop.config import SwopConfig, SwopConfigError, add_arguments, from_arguments
from swarmlearning.swop.tasks import Runtime

log = logging.getLogger("swarm.swop")


class RuntimeUnavailable(RuntimeError):
    """The asked-for runtime cannot run here; the message says why."""


def choose_runtime(config: SwopConfig) -> Callable[[], Runtime]:
    """A maker of fresh runtimes (one per task, so that no state outlives its task) of the
    kind --runtime names, else the profile's resourcemgr: DOCKER means docker when an engine is
    reachable, the process runtime otherwise (said in the log); PROCESS means processes."""
    wanted = config.runtime
    if wanted == "auto":
        wanted = "docker" if config.profile.mgrtype.upper() == "DOCKER" else "process"
        if wanted == "docker":
            from swarmlearning.swop.runtimes.docker import docker_available

            ok, why = docker_available()
            if not ok:
                log.info("Profile resourcemgr is DOCKER but %s: using the process runtime",
                         why)
                wanted = "process"
    if wanted == "docker":
        from swarmlearning.swop.runtimes.docker import DockerRuntime, docker_available

        ok, why = docker_available()
        if not ok:
            raise RuntimeUnavailable(f"--runtime docker: {why}")
        from swarmlearning.nodes.uid import node_uid

        uid = node_uid(config.data_dir)

        def make() -> Runtime:
            return DockerRuntime(sl_image=config.sl_image, swop_uid=uid)

        make.name = "docker"  # type: ignore[attr-defined]
        return make
    from swarmlearning.swop.runtimes.process import ProcessRuntime

    return ProcessRuntime


def main(argv: list[str] | None = None) -> int:
    """`swci run-swop` and `python -m swarmlearning.swop`."""
    from swarmlearning.identity.tls import IdentityError
    from swarmlearning.logs import setup_logging
    from swarmlearning.sn.client import SNError
    from swarmlearning.swop.operator import SwarmOperator

    parser = argparse.ArgumentParser(prog="swci run-swop",
                                     description="Run a Swarm Operator node (SWOP).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(os.environ.get("SWOP_LOG_LEVEL"))
    try:
        config = from_arguments(args)
        operator = SwarmOperator(config, choose_runtime(config))
    except (SwopConfigError, IdentityError, RuntimeUnavailable) as exc:
        log.error("%s", exc)
        return 2

    def stop(signum: int) -> None:
        log.info("Received %s: stopping", signal.Signals(signum).name)
        operator.stop.set()

    try:
        with capture_signals(stop):
            return operator.run()
    except SNError as exc:
        log.error("Cannot run: %s", exc)
        return 1
