"""Real swarm processes for integration tests: PKIs, SN daemons on 127.0.0.1, and swci runs.
Every process started here is stopped by its pid; every wait is bounded."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from swarmlearning.identity.pki import PkiLayout, add_trusted_ca, generate_pki

READY = "Starting SWARM-API-SERVER on port: "
SL_READY = "Starting SWARM-LEARNING-FS on port: "
ROOT = Path(__file__).resolve().parents[1]
FIXED_PORTS_FROM = 20000


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, from below the kernel's ephemeral range:
    a port from inside it can be taken, before the test's daemon binds it, as the source port
    of any outgoing connection on the machine (the daemons make many)."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(FIXED_PORTS_FROM, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # every port tried was busy: any free one will do
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return low if low > FIXED_PORTS_FROM + 1000 else 32768


def in_netns(netns: str) -> list[str]:
    """The command prefix that runs a program in a network namespace (none: the host's)."""
    return ["ip", "netns", "exec", netns] if netns else []


def make_orgs(root: Path, *names: str) -> dict[str, PkiLayout]:
    """One PKI per organisation (index 1, 2, ...); the first ones listed trust each other."""
    return {name: generate_pki(root / name, f"org-{name}", index)
            for index, name in enumerate(names, start=1)}


def exchange_cas(*layouts: PkiLayout) -> None:
    for layout in layouts:
        for other in layouts:
            if other is not layout:
                add_trusted_ca(layout.capath, other.ca_cert)


def identity_env(layout: PkiLayout, comp: str = "swci") -> dict[str, str]:
    return {"SWARM_ID_CERT": str(layout.cert(comp)), "SWARM_ID_KEY": str(layout.key(comp)),
            "SWARM_ID_CAPATH": str(layout.capath)}


class Daemon:
    """Log reading, bounded waits and stopping by pid, for one daemon process."""

    name: str
    log_path: Path
    process: subprocess.Popen | None
    ready_line = READY

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 60.0, occurrence: int = 1) -> None:
        self.wait_for(self.ready_line, timeout, occurrence)

    def wait_for(self, text: str, timeout: float = 60.0, occurrence: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= occurrence:
                return
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n"
                                     f"{self.log()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no {text!r} in {timeout} s:\n"
                             f"{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)



@dataclass
class SN(Daemon):
    """One SN daemon process."""

    name: str
    pki: PkiLayout
    data_dir: Path
    log_path: Path
    api_port: int = field(default_factory=free_port)
    p2p_port: int = field(default_factory=free_port)
    sentinel_port: int | None = None
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"
    sentinel_host: str = "127.0.0.1"
    netns: str = ""  # a network namespace the test made, to run in instead of the host's
    registry: str = ""

    @property
    def sentinel(self) -> bool:
        return self.sentinel_port is None

    def start(self) -> SN:
        command = [*in_netns(self.netns), sys.executable, "-m", "swarmlearning.sn",
                   "--host-ip", self.host,
                   "--sn-api-port", str(self.api_port), "--sn-p2p-port", str(self.p2p_port),
                   "--cert", str(self.pki.cert("sn")), "--key", str(self.pki.key("sn")),
                   "--capath", str(self.pki.capath), "--data-dir", str(self.data_dir),
                   "--name", self.name, "--heartbeat", "2"]
        if self.registry:  # finds the contracts on its --eth-rpc network, not via a sentinel
            command += ["--registry", self.registry]
        else:
            command += (["--sentinel"] if self.sentinel else
                        ["--sentinel-ip", self.sentinel_host, "--sentinel-api-port",
                         str(self.sentinel_port)])
        command += self.extra
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

def run_swci(*args: str, cwd: Path, env: dict[str, str], stdin: str = "",
             timeout: float = 120) -> subprocess.CompletedProcess:
    full = {**os.environ, "SWCI_HISTORY_FILE": str(cwd / ".history"), **env}
    return subprocess.run([sys.executable, "-m", "swci", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=full)


def output_lines(result: subprocess.CompletedProcess) -> list[str]:
    """swci's output lines without prompts, stripped of the 4-space indent."""
    return [line[4:] for line in result.stdout.splitlines() if line.startswith("    ")]


@dataclass
class SL(Daemon):
    """One SL daemon process, with or without an ML program beside it."""

    name: str
    pki: PkiLayout
    sn: SN
    data_dir: Path
    log_path: Path
    fs_port: int = field(default_factory=free_port)
    ml_cmd: str = ""
    ml_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    ready_line = SL_READY
    host: str = "127.0.0.1"
    netns: str = ""  # a network namespace the test made, to run in instead of the host's

    @property
    def channel(self) -> Path:
        return self.data_dir / "channel.sock"

    def start(self) -> SL:
        command = [*in_netns(self.netns), sys.executable, "-m", "swarmlearning.sl",
                   "--host-ip", self.host, "--sn-ip", self.sn.host,
                   "--sn-api-port", str(self.sn.api_port),
                   "--sl-fs-port", str(self.fs_port), "--cert", str(self.pki.cert("sl")),
                   "--key", str(self.pki.key("sl")), "--capath", str(self.pki.capath),
                   "--data-dir", str(self.data_dir), "--name", self.name, "--heartbeat", "1"]
        if self.ml_cmd:
            command += ["--ml-cmd", self.ml_cmd]
            command += [arg for key, value in self.ml_env.items()
                        for arg in ("--ml-e", f"{key}={value}")]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1",
                                                 **self.env})
        return self

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout} s:\n"
                                 f"{self.log()[-4000:]}") from None
