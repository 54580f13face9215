"""What every benchmark script shares: the machine's description, free ports, stopping the
processes it started, timing summaries, and writing results (a printed table and a JSON file
under bench/results/)."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0,
                 first: int = signal.SIGTERM, group: bool = False) -> None:
    """Send `first` to the process by its pid (or to the process group it leads, when it was
    started with start_new_session), wait up to `grace` seconds, then SIGKILL it and reap it."""
    kill = os.killpg if group else os.kill
    if proc.poll() is not None:
        return
    try:
        kill(proc.pid, first)
        proc.wait(timeout=grace)
        return
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The machine and the versions that matter, recorded with every result."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    packages = ("numpy", "torch", "flwr", "grpcio", "web3", "py-evm", "uvicorn", "httpx",
                "safetensors", "keras")
    return {"cores": os.cpu_count(), "cpu": _cpu_model(), "memory_bytes": memory,
            "system": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "python": platform.python_version(), "load_1min": load,
            "versions": {name: v for name in packages if (v := _version(name))},
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def describe(info: dict[str, Any] | None = None) -> str:
    """One line for the top of a printed table."""
    info = info or machine()
    memory = f", {info['memory_bytes'] / 2**30:.0f} GiB" if info.get("memory_bytes") else ""
    return (f"{info['cores']} cores ({info['cpu']}){memory}, {info['system']}, "
            f"CPython {info['python']}")


def summary(values: Sequence[float]) -> dict[str, float]:
    """min / median / max / p95 of a list of timings (seconds or any unit)."""
    ordered = sorted(values)
    if not ordered:
        return {}
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"min": ordered[0], "median": statistics.median(ordered), "max": ordered[-1],
            "p95": p95, "n": len(ordered)}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (right-aligned numbers), ready for the terminal and for docs."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                              for c, w in zip(row, widths, strict=True)) + " |"
            for row in cells]
    return "\n".join([line, rule, *body])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _numeric(text: str) -> bool:
    return text[:1].isdigit() or text[:1] in "-." and text[1:2].isdigit()


def write_json(name: str, payload: dict[str, Any], path: str | None = None) -> Path:
    """bench/results/<name>.json (or `path`), with the machine description added."""
    target = Path(path) if path else RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "command": " ".join(sys.argv),
               **payload}
    target.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return target


def create_contract(workspace: Any, name: str) -> None:
    """A fresh training contract on the workspace's sentinel SN, through its API, as the
    workspace's swci identity (mutual TLS)."""
    import httpx

    from swarmlearning.identity.tls import client_context
    from swarmlearning.sn import routes

    sentinel = workspace.running_sentinel()
    if sentinel is None:
        raise RuntimeError("the sentinel SN is not running")
    context = client_context(workspace.identity("swci"))
    with httpx.Client(base_url=f"https://{sentinel.host}:{sentinel.ports['api']}",
                      verify=context, timeout=30) as http:
        http.post(routes.CREATE_CONTRACT.path, json={"name": name}).raise_for_status()
