"""Local nodes as real processes under a workspace directory.

    <workspace>/pki/                 throwaway PKI, made on first use (gen-cert layout)
    <workspace>/pki/orgs/<org>/      another organisation's PKI (START SN ... ORG <org>); every
                                     organisation of the workspace trusts every other one
    <workspace>/nodes/<name>.json    one record per started node: kind, pid, ports, command
    <workspace>/logs/<name>.log      its log (stdout and stderr)
    <workspace>/data/<name>/         its data directory (an SN's chain lives here)

A node is started detached (its own session), so it outlives the shell that started it, and is
ready when its readiness line appears in its log. Stopping sends SIGTERM, waits, then SIGKILL.
Records and logs go when a node is stopped unless kept; data directories are never removed here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swarmlearning.defaults import (
    READY_LINES,
    SL_FS_PORT,
    SN_API_PORT,
    SN_P2P_PORT,
    SWCI_WEB_PORT,
    NodeKind,
)
from swarmlearning.identity.pki import PkiLayout, add_trusted_ca, generate_pki, node_certificate
from swarmlearning.identity.tls import Identity

STOP_ORDER = (NodeKind.SWCI, NodeKind.SWOP, NodeKind.SL, NodeKind.SN)
DEFAULT_ORG = "swarm-local"
# a SWOP stops its task's ML programs, then its SLs (10 s grace each) before it exits
SWOP_STOP_GRACE = 40.0
PKI_INDEX = 1


class NodeError(RuntimeError):
    """A node could not be started or stopped; the message says why and where its log is."""


@dataclass
class NodeRecord:
    """What the workspace remembers about one started node."""

    name: str
    kind: str
    pid: int
    command: list[str]
    log: str
    data_dir: str
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    role: str = ""
    started: float = 0.0
    org: str = ""

    def running(self) -> bool:
        """True while the pid is alive and still one of ours (not a reused pid)."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return _pid_alive(self.pid)
        if b"swarmlearning" not in cmdline and b"swci" not in cmdline:
            return False
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Workspace:
    """The local nodes of one swarm directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    def pki(self, org: str | None = None) -> PkiLayout:
        """An organisation's PKI (default: the workspace's own), made on first use. A new
        organisation and every existing one add each other's CA to their capath, as two real
        organisations would by exchanging CA certificates."""
        if not org or org == DEFAULT_ORG:
            layout = PkiLayout(root=self.root / "pki" / "cert", index=PKI_INDEX)
            if not layout.cert("swci").exists():
                layout = generate_pki(self.root / "pki", DEFAULT_ORG, PKI_INDEX)
                self._exchange_cas(layout)
            return layout
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", org):
            raise NodeError(f"organisation name {org!r}: use letters, digits, '.', '_', '-'")
        known = self._orgs()
        if org in known:
            return known[org]
        index = max([PKI_INDEX, *(layout.index for layout in known.values())]) + 1
        directory = self.root / "pki" / "orgs" / org
        layout = generate_pki(directory, org, index)
        (directory / "index").write_text(f"{index}\n", encoding="utf-8")
        self._exchange_cas(layout)
        return layout

    def _orgs(self) -> dict[str, PkiLayout]:
        """The other organisations' PKIs, by name."""
        orgs = self.root / "pki" / "orgs"
        found = {}
        for directory in sorted(orgs.iterdir()) if orgs.is_dir() else ():
            index_file = directory / "index"
            if index_file.exists():
                found[directory.name] = PkiLayout(root=directory / "cert",
                                                  index=int(index_file.read_text().strip()))
        return found

    def _exchange_cas(self, new: PkiLayout) -> None:
        own = PkiLayout(root=self.root / "pki" / "cert", index=PKI_INDEX)
        for other in [own, *self._orgs().values()]:
            if other.root == new.root or not other.ca_cert.exists():
                continue
            add_trusted_ca(other.capath, new.ca_cert)
            add_trusted_ca(new.capath, other.ca_cert)

    def identity(self, component: str, org: str | None = None) -> Identity:
        layout = self.pki(org)
        return Identity(cert=layout.cert(component), key=layout.key(component),
                        capath=layout.capath)

    def node_identity(self, component: str, node: str, org: str | None = None,
                      host: str = "127.0.0.1") -> Identity:
        """The identity of one SL or SWOP: its own certificate from its organisation's CA, so
        that no node of the organisation can act for another."""
        layout = self.pki(org)
        try:
            ipaddress.ip_address(host)
            hosts, ips = ["localhost"], list(dict.fromkeys(["127.0.0.1", host]))
        except ValueError:
            hosts, ips = list(dict.fromkeys(["localhost", host])), ["127.0.0.1"]
        try:
            cert, key = node_certificate(layout, component, node, hosts=hosts, ips=ips)
        except ValueError as exc:
            raise NodeError(str(exc)) from None
        return Identity(cert=cert, key=key, capath=layout.capath)

    def has_pki(self) -> bool:
        return (self.root / "pki" / "cert" / f"swci-{PKI_INDEX}-cert.pem").exists()

    # -- records -----------------------------------------------------------------------------------

    def records(self) -> list[NodeRecord]:
        if not self.nodes_dir.is_dir():
            return []
        found = []
        for path in sorted(self.nodes_dir.glob("*.json")):
            try:
                found.append(NodeRecord(**json.loads(path.read_text(encoding="utf-8"))))
            except (ValueError, TypeError):
                continue
        return sorted(found, key=lambda record: record.started)

    def record(self, name: str) -> NodeRecord | None:
        path = self.nodes_dir / f"{name}.json"
        if not path.exists():
            return None
        return NodeRecord(**json.loads(path.read_text(encoding="utf-8")))

    def _save(self, record: NodeRecord) -> None:
        self.nodes_dir.mkdir(parents=True, exist_ok=True)
        (self.nodes_dir / f"{record.name}.json").write_text(
            json.dumps(asdict(record), indent=1) + "\n", encoding="utf-8")

    def running_sentinel(self) -> NodeRecord | None:
        for record in self.records():
            if record.kind == "sn" and record.role == "sentinel" and record.running():
                return record
        return None

    # -- starting ----------------------------------------------------------------------------------

    def start_sn(self, name: str, *, sentinel_ip: str | None = None,
                 sentinel_port: int | None = None, sentinel: bool | None = None,
                 api_port: int = SN_API_PORT, p2p_port: int = SN_P2P_PORT, host: str = "127.0.0.1",
                 org: str | None = None, timeout: float = 60.0,
                 heartbeat: float | None = None) -> NodeRecord:
        """Start an SN of an organisation (default: the workspace's own). With neither
        `sentinel` nor `sentinel_ip`, it joins the workspace's running sentinel, or becomes the
        sentinel when there is none. `heartbeat`: its liveness interval in seconds (the SN's
        default when None); a node silent for 3 of them is taken as gone."""
        if sentinel_ip is None and not sentinel:
            local = self.running_sentinel()
            if local is not None:
                sentinel_ip, sentinel_port = local.host, local.ports["api"]
        role = "sentinel" if sentinel_ip is None else "sn"
        org = org or DEFAULT_ORG
        ident = self.identity("sn", org)
        data_dir = self.root / "data" / name
        command = [sys.executable, "-m", "swarmlearning.sn", "--host-ip", host,
                   "--sn-api-port", str(api_port), "--sn-p2p-port", str(p2p_port),
                   "--cert", str(ident.cert), "--key", str(ident.key),
                   "--capath", str(ident.capath), "--data-dir", str(data_dir), "--name", name]
        if heartbeat is not None:
            command += ["--heartbeat", f"{heartbeat:g}"]
        if role == "sentinel":
            command.append("--sentinel")
        else:
            command += ["--sentinel-ip", str(sentinel_ip),
                        "--sentinel-api-port", str(sentinel_port or SN_API_PORT)]
        return self._start(name, "sn", command, data_dir, host,
                           {"api": api_port, "p2p": p2p_port}, role, timeout, org)

    def _parent_sn(self, sn: str | None, command: str) -> NodeRecord:
        if sn is None:
            parent = self.running_sentinel()
            if parent is None:
                raise NodeError(f"no SN is running in this workspace; START SN first, or name "
                                f"the SN with {command} ... SN <name>")
            return parent
        parent = self.record(sn)
        if parent is None or parent.kind != "sn" or not parent.running():
            raise NodeError(f"no running SN named {sn} in this workspace (LIST LOCAL "
                            "NODES shows them)")
        return parent

    def start_sl(self, name: str, *, sn: str | None = None, fs_port: int = SL_FS_PORT,
                 ml_cmd: str = "", host: str = "127.0.0.1",
                 timeout: float = 60.0) -> NodeRecord:
        """Start an SL registered with a running local SN (by name; default: the sentinel)."""
        parent = self._parent_sn(sn, "START SL")
        ident = self.node_identity("sl", name, parent.org, host)
        data_dir = self.root / "data" / name
        command = [sys.executable, "-m", "swarmlearning.sl", "--host-ip", host,
                   "--sn-ip", parent.host, "--sn-api-port", str(parent.ports["api"]),
                   "--sl-fs-port", str(fs_port), "--cert", str(ident.cert),
                   "--key", str(ident.key), "--capath", str(ident.capath),
                   "--data-dir", str(data_dir), "--name", name]
        if ml_cmd:
            command += ["--ml-cmd", ml_cmd]
        return self._start(name, "sl", command, data_dir, host, {"fs": fs_port}, "sl", timeout,
                           parent.org)

    def start_swop(self, name: str, profile: Path, *, sn: str | None = None,
                   host: str = "127.0.0.1", runtime: str = "auto",
                   timeout: float = 60.0) -> NodeRecord:
        """Start a SWOP with a profile file, attached to a running local SN (by name; default:
        the sentinel). The profile's directory is its user directory."""
        profile = profile.resolve()
        if not profile.is_file():
            raise NodeError(f"the SWOP profile {profile} does not exist")
        parent = self._parent_sn(sn, "START SWOP")
        ident = self.node_identity("swop", name, parent.org, host)
        data_dir = self.root / "data" / name
        command = [sys.executable, "-m", "swarmlearning.swop", "--usr-dir", str(profile.parent),
                   "--profile-file-name", profile.name, "--sn-ip", parent.host,
                   "--sn-api-port", str(parent.ports["api"]), "--host-ip", host,
                   "--cert", str(ident.cert), "--key", str(ident.key),
                   "--capath", str(ident.capath), "--data-dir", str(data_dir), "--name", name,
                   "--runtime", runtime]
        return self._start(name, "swop", command, data_dir, host, {}, "swop", timeout,
                           parent.org)

    def start_web(self, name: str = "swci-web", *, port: int = SWCI_WEB_PORT,
                  usr_dir: Path | None = None, host: str = "127.0.0.1",
                  timeout: float = 60.0) -> NodeRecord:
        """Start the SWCI web API (`swci serve`) with the workspace's swci certificate."""
        ident = self.identity("swci")
        data_dir = self.root / "data" / name
        command = [sys.executable, "-m", "swci", "serve", "--host", host, "--port", str(port),
                   "--workspace", str(self.root), "--data-dir", str(data_dir),
                   "--cert", str(ident.cert), "--key", str(ident.key),
                   "--capath", str(ident.capath)]
        if usr_dir is not None:
            command += ["--usr-dir", str(usr_dir)]
        return self._start(name, "swci", command, data_dir, host, {"web": port}, "web", timeout)

    def _start(self, name: str, kind: str, command: list[str], data_dir: Path, host: str,
               ports: dict[str, int], role: str, timeout: float,
               org: str = DEFAULT_ORG) -> NodeRecord:
        existing = self.record(name)
        if existing is not None and existing.running():
            raise NodeError(f"a node named {name} is already running (pid {existing.pid}); "
                            f"STOP SN {name} first or choose another name")
        log_path = self.root / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            offset = log.tell()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        record = NodeRecord(name=name, kind=kind, pid=process.pid, command=command,
                            log=str(log_path), data_dir=str(data_dir), host=host, ports=ports,
                            role=role, started=time.time(), org=org)
        self._save(record)
        self._await_ready(record, process, offset, timeout)
        return record

    def _await_ready(self, record: NodeRecord, process: subprocess.Popen, offset: int,
                     timeout: float) -> None:
        marker = READY_LINES[record.kind]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = _read_from(Path(record.log), offset)
            if marker in text:
                return
            if process.poll() is not None:
                self._forget(record.name, keep=True)
                raise NodeError(f"{record.kind.upper()} {record.name} exited with status "
                                f"{process.returncode} before it was ready:\n"
                                f"{_tail(text)}\n(log: {record.log})")
            time.sleep(0.05)
        self.stop(record.name, keep=True)
        raise NodeError(f"{record.kind.upper()} {record.name} was not ready within "
                        f"{timeout:g} s; stopped it (log: {record.log})")

    # -- stopping ----------------------------------------------------------------------------------

    def stop(self, name: str, *, keep: bool = False, grace: float = 10.0) -> NodeRecord:
        record = self.record(name)
        if record is None:
            raise NodeError(f"no node named {name} in {self.root}")
        if record.running():
            _terminate(record.pid, max(grace, SWOP_STOP_GRACE) if record.kind == "swop"
                       else grace)
        self._forget(name, keep=keep)
        return record

    def stop_all(self, kinds: tuple[str, ...] = STOP_ORDER, *, keep: bool = False,
                 grace: float = 10.0,
                 report: Callable[[NodeRecord], None] = lambda record: None) -> list[NodeRecord]:
        """Stop every node of the given kinds: SWCI, SWOP, SL, then SN; the sentinel last."""
        stopped = []
        records = self.records()
        for kind in STOP_ORDER:
            if kind not in kinds:
                continue
            batch = [r for r in records if r.kind == kind]
            batch.sort(key=lambda r: (r.role == "sentinel", -r.started))
            for record in batch:
                self.stop(record.name, keep=keep, grace=grace)
                report(record)
                stopped.append(record)
        return stopped

    def _forget(self, name: str, *, keep: bool) -> None:
        if keep:
            return
        (self.nodes_dir / f"{name}.json").unlink(missing_ok=True)
        (self.root / "logs" / f"{name}.log").unlink(missing_ok=True)


def _terminate(pid: int, grace: float) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; reaps a child of ours."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _still_there(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    end = time.monotonic() + 5
    while _still_there(pid) and time.monotonic() < end:
        time.sleep(0.05)


def _still_there(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return _pid_alive(pid)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
