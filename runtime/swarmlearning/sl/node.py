"""The Swarm Learning node: file server, registration and liveness with its SN, the ML channel,
progress reports, an optional ML program beside it, and clean shutdown."""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
from typing import Any

from swarmlearning import __version__
from swarmlearning.defaults import READY_LINES, NodeKind
from swarmlearning.identity.tls import client_context, server_context
from swarmlearning.lifecycle import capture_signals
from swarmlearning.nodes.uid import node_uid
from swarmlearning.serve import Listener, serve_all
from swarmlearning.sl.blobs import BlobStore
from swarmlearning.sl.channel_server import ChannelServer
from swarmlearning.sl.config import SLConfig
from swarmlearning.sl.fileserver import file_server
from swarmlearning.sl.peerfetch import PeerFetcher
from swarmlearning.sl.rounds import RoundEngine, Session
from swarmlearning.sn.client import STOP_RETRY_SECONDS, SNClient, SNError

log = logging.getLogger("swarm.sl")
REPORT_DRAIN_SECONDS = 10.0
READY_LINE = READY_LINES[NodeKind.SL]


class SwarmLearningNode:
    """One SL process."""

    def __init__(self, config: SLConfig) -> None:
        self.config = config
        self.uid = node_uid(config.data_dir)
        self._stop = threading.Event()
        self._stopping_ml = False  # set before the SL stops its ML program
        self._serving = False  # set once the file server listens
        self.server_tls = server_context(config.identity)
        client_tls = client_context(config.identity)
        self.sn = SNClient(config.sn_ip, config.sn_api_port, client_tls)
        self.peers = PeerFetcher(client_tls, config.max_blob_bytes)
        self.store = BlobStore(config.data_dir / "blobs", config.max_blob_bytes,
                               memory=config.ram_intensive)
        self.engine = RoundEngine(self.uid, self.sn, self.store, self.peers, self._stop,
                                  make_me_admin=config.make_me_admin,
                                  wait_full_quorum=config.wait_full_quorum,
                                  leader_failure_timeout=config.leader_failure_timeout,
                                  ram_intensive=config.ram_intensive,
                                  merge_backend=config.merge_backend,
                                  outlier_factor=config.outlier_factor)
        self._reports: queue.Queue[Session | None] = queue.Queue()
        self.ml: subprocess.Popen | None = None
        self.exit_code = 0

    def run(self) -> int:
        """Register with the SN, serve until SIGTERM or SIGINT (or until the ML program ends, or
        the stop event is set off the main thread), then leave cleanly; the exit code."""
        with capture_signals(lambda signum: self._begin_stop()):
            return self._run()

    def _run(self) -> int:
        cfg = self.config
        log.info("## SWARM LEARNING SL NODE ## uid %s, SN %s:%s", self.uid, cfg.sn_ip,
                 cfg.sn_api_port)
        try:
            sn_info = self.sn.version()
            self.sn.register(self.uid, cfg.host_ip, cfg.fs_port, cfg.name, sn_info["NODE_UID"])
        except SNError:
            if not self._stop.is_set():
                raise
            log.info("Stopped while reaching the SN")  # a signal ended the wait for it
            log.info("SL stopped")
            self.sn.close()
            return 0
        log.info("Registered with SN %s (LIST NODES shows this SL under it)",
                 sn_info["NODE_UID"])
        channel = ChannelServer(cfg.channel_path, self.engine, self._reports.put)
        threads = [threading.Thread(target=self._heartbeat, daemon=True, name="heartbeat"),
                   threading.Thread(target=self._reporter, daemon=True, name="progress")]

        def info() -> dict[str, Any]:
            return {"node": "SL", "uid": self.uid, "name": cfg.name, "version": __version__}

        def ready() -> None:
            self._serving = True
            for thread in threads:
                thread.start()
            channel.start()
            log.info("ML channel: SL_REQUEST_CHANNEL=%s", cfg.channel_path)
            log.info("%s%s", READY_LINE, cfg.fs_port)
            if cfg.ml_cmd:
                self._start_ml()

        try:
            serve_all([Listener(file_server(self.store, info), cfg.host_ip, cfg.fs_port,
                                "SL file server")], self.server_tls, on_ready=ready,
                      stop=self._stop)
        finally:
            self._stop.set()
            self.sn.stop_retrying_after(STOP_RETRY_SECONDS)
            self._reports.put(None)
            channel.close()
            self._stop_ml()
            if threads[1].is_alive():
                threads[1].join(timeout=REPORT_DRAIN_SECONDS)  # the last progress report
            try:
                self.sn.deregister(self.uid)
            except SNError as exc:
                log.warning("Could not mark this SL as gone: %s", exc)
            self.sn.close()
            self.peers.close()
            log.info("SL stopped")
        return self.exit_code

    # -- background work ---------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            try:
                self.sn.alive(self.uid)
            except SNError as exc:
                log.warning("Liveness report failed: %s", exc)

    def _reporter(self) -> None:
        """Progress for PERFDATA, off the ML's path: only the newest report per contract. The
        reports queued before the stop mark are still sent (the final epochs of a run)."""
        stopping = False
        while not stopping:
            item = self._reports.get()
            if item is None:
                return
            latest = {item.contract: item}
            while not self._reports.empty():
                more = self._reports.get_nowait()
                if more is None:
                    stopping = True
                    break
                latest[more.contract] = more
            for session in latest.values():
                try:
                    self.sn.progress(session.contract, {
                        "uid": self.uid, "leader": session.led_last, "loss": session.loss,
                        "metric": session.metric, "total_epochs": session.total_epochs,
                        "completed_epochs": session.completed_epochs})
                except SNError as exc:
                    log.warning("Progress report failed: %s", exc)

    # -- the ML program beside this SL -------------------------------------------------------------

    def _start_ml(self) -> None:
        env = {**os.environ, **self.config.ml_env,
               "SL_REQUEST_CHANNEL": str(self.config.channel_path)}
        log.info("Starting the ML program: %s", " ".join(self.config.ml_cmd))
        try:
            self.ml = subprocess.Popen(self.config.ml_cmd, env=env, stdin=subprocess.DEVNULL,
                                       preexec_fn=_die_with_parent)
        except OSError as exc:
            log.error("Could not start the ML program %s: %s", self.config.ml_cmd[0], exc)
            self.exit_code = 1
            os.kill(os.getpid(), 15)
            return
        threading.Thread(target=self._watch_ml, daemon=True, name="ml-watch").start()

    def _watch_ml(self) -> None:
        assert self.ml is not None
        code = self.ml.wait()
        if self._stopping_ml:  # the SL is stopping and stopped it: not the ML's failure
            log.info("The ML program stopped (status %s)", code)
            return
        log.info("The ML program exited with status %s; stopping the SL", code)
        self.exit_code = code
        os.kill(os.getpid(), 15)

    def _begin_stop(self) -> None:
        """SIGTERM or SIGINT: the ML program is signalled first, so that it ends at once (its
        default SIGTERM action) rather than on a "the SL is stopping" answer to a sync in
        flight, which it would raise as an error; then every wait of the SL ends."""
        self._stopping_ml = True
        if self.ml is not None and self.ml.poll() is None:
            self.ml.terminate()
        if not self._serving:
            self.sn.stop_retrying_after(0)  # still reaching the SN: give up that wait now
        self._stop.set()

    def _stop_ml(self) -> None:
        self._stopping_ml = True
        if self.ml is not None and self.ml.poll() is None:
            self.ml.terminate()
            try:
                self.ml.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.ml.kill()
                self.ml.wait()


def _die_with_parent() -> None:
    """In the ML child: get SIGTERM when the SL dies, even by kill -9 (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """`swci run-sl` and `python -m swarmlearning.sl`."""
    import argparse

    from swarmlearning.identity.tls import IdentityError
    from swarmlearning.logs import setup_logging
    from swarmlearning.serve import PortInUse
    from swarmlearning.sl.config import SLConfigError, add_arguments, from_arguments

    parser = argparse.ArgumentParser(prog="swci run-sl",
                                     description="Run a Swarm Learning node (SL).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(os.environ.get("SL_LOG_LEVEL"))
    try:
        config = from_arguments(args)
        return SwarmLearningNode(config).run()
    except (SLConfigError, IdentityError, PortInUse) as exc:
        log.error("%s", exc)
        return 1
    except SNError as exc:
        log.error("Cannot start: %s", exc)
        return 1
