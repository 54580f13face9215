"""Soak: repeated train, reset and train cycles on one swarm for SOAK_SECONDS (default 1800),
run on demand, not in CI:

    .venv/bin/python -m pytest -m soak tests/reliability/test_soak.py -s

Two SNs (they stay up throughout), three SLs with the digits program (PyTorch) started for each
training with the same data directories (two of them keep their blobs on disk), one contract
reset between trainings. After every
cycle it samples each SN's open files, threads and resident memory, the processes left under
the test, and the size of the SL data directories, and at the end it checks that none of them
grew beyond noise. The figures go to SOAK_REPORT (a JSON file) when set, and to `MEASURED`
lines; docs/reliability.md quotes them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from swarmlearning.sl.blobs import KEEP_ON_DISK
from tests.reliability.test_faults import children
from tests.training_swarm import Swarm, peer, run_to_end, swarm_fixture

pytest.importorskip("torch")
pytest.importorskip("sklearn")

SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
pytestmark = [pytest.mark.soak, pytest.mark.timeout(SECONDS + 900)]
WARM_UP = 3  # cycles before the baseline: caches, imports and the chain's first blocks
# growth that is noise, from the baseline to the last sample
MORE_FILES = 4
MORE_THREADS = 4
MORE_RSS = 0.25  # of the baseline resident set
MORE_DISK = 1 << 20

swarm = swarm_fixture("soak")


def sample(swarm: Swarm, data_dirs: list[Path]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for index, sn in enumerate(swarm.sns):
        pid = sn.process.pid
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        figures[f"sn{index}_files"] = len(os.listdir(f"/proc/{pid}/fd"))
        figures[f"sn{index}_threads"] = int(fields["Threads"])
        figures[f"sn{index}_rss_mb"] = int(fields["VmRSS"].split()[0]) / 1024
    figures["processes"] = len(children(os.getpid()))
    figures["sl_data_bytes"] = sum(path.stat().st_size for root in data_dirs
                                   for path in root.rglob("*") if path.is_file())
    figures["sl_blob_files"] = max(len(list(root.glob("blobs/*.safetensors")))
                                   for root in data_dirs)
    return figures


def test_train_reset_train_cycles_leave_nothing_behind(swarm: Swarm, tmp_path: Path) -> None:
    contract = swarm.new_contract()
    data_dirs = [tmp_path / f"sl{index}" for index in (1, 2, 3)]
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < SECONDS or len(samples) <= WARM_UP + 1:
        cycle_started = time.monotonic()
        # two peers keep their blobs on disk, so that the data directories show what stays
        peers = [peer(swarm, tmp_path, index, contract, epochs=2,
                      env={"SL_RAM_INTENSIVE": "False"} if index < 3 else {})
                 for index in (1, 2, 3)]
        run_to_end(peers, timeout=300)
        status = swarm.get(f"/v1/contracts/{contract}/status")
        assert status["STATE"] == "COMPLETED", status
        with swarm.api() as api:
            api.post(f"/v1/contracts/{contract}/reset").raise_for_status()
        for log in (tmp_path / "logs").glob("*.log"):
            log.write_bytes(b"")  # the logs are the test's, not the swarm's
        figures = sample(swarm, data_dirs)
        figures["cycle_seconds"] = time.monotonic() - cycle_started
        samples.append(figures)
    base, last = samples[WARM_UP], samples[-1]
    report = {"seconds": time.monotonic() - started, "cycles": len(samples),
              "baseline": base, "last": last,
              "peak": {key: max(s[key] for s in samples[WARM_UP:]) for key in base},
              "samples": samples}
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps(report, indent=1))
    print(f"MEASURED soak: {report['cycles']} cycles in {report['seconds']:.0f} s; "
          + ", ".join(f"{key} {base[key]:.1f} -> {last[key]:.1f} (peak {report['peak'][key]:.1f})"
                      for key in base))
    assert last["processes"] == base["processes"], report
    assert last["sl_data_bytes"] <= base["sl_data_bytes"] + MORE_DISK, report
    # each SL run keeps its newest blobs; the runs before it must not add to them
    assert report["peak"]["sl_blob_files"] <= KEEP_ON_DISK, report
    for index in range(len(swarm.sns)):
        assert last[f"sn{index}_files"] <= base[f"sn{index}_files"] + MORE_FILES, report
        assert last[f"sn{index}_threads"] <= base[f"sn{index}_threads"] + MORE_THREADS, report
        assert last[f"sn{index}_rss_mb"] <= base[f"sn{index}_rss_mb"] * (1 + MORE_RSS), report
