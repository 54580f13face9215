"""Every benchmark of docs/benchmarks.md, one after the other, in one run on one machine.

Each script runs as its own process (each is also runnable alone) with the settings the docs
report, writes its JSON to bench/results/, and its printed tables go to
bench/results/<name>.txt. The machine's load is recorded before and after each, as the
numbers mean little on a busy machine.

Run: .venv/bin/python bench/run_all.py [--only sync_round,scale] [--quick]   (or: make bench)
--quick runs every script at small sizes, to check that they all work (a few minutes).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, describe

HERE = Path(__file__).resolve().parent

# name: (the settings of docs/benchmarks.md, the quick check)
PLAN: dict[str, tuple[list[str], list[str]]] = {
    "startup": ([], ["--runs", "2", "--sn-runs", "1", "--no-demo"]),
    "merge": (["--retries", "1", "--pause", "5", "--gpu"],
              ["--peers", "2,4", "--sizes", "1e6", "--repeat", "1", "--retries", "0"]),
    "outliers": ([], ["--peers", "4", "--sizes", "1e5", "--repeat", "1"]),
    "sync_round": (["--sizes", "1e6,1e7,5e7"],
                   ["--peers", "2,4", "--sizes", "1e6", "--rounds", "2"]),
    "time_to_accuracy": (["--repeat", "3"], ["--peers", "3", "--rounds", "8"]),
    "overhead": ([], ["--epochs", "1", "--repeats", "1"]),
    "scale": ([], ["--peers", "8,16", "--rounds", "2"]),
    "sn_client": ([], ["--polls", "20", "--block", "10"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PLAN), help="which scripts, in order")
    parser.add_argument("--quick", action="store_true", help="small sizes, a check only")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in PLAN]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(PLAN)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(f"{describe()}\n", flush=True)
    failed = []
    started = time.monotonic()
    for name in names:
        full, quick = PLAN[name]
        flags = quick if args.quick else full
        target = ["--json", str(RESULTS / f"{name}{'-quick' if args.quick else ''}.json")]
        command = [sys.executable, str(HERE / f"{name}.py"), *flags, *target]
        load = os.getloadavg()[0]
        print(f"== {name}: {' '.join(command[1:])} (load {load:.2f})", flush=True)
        began = time.monotonic()
        out = RESULTS / f"{name}{'-quick' if args.quick else ''}.txt"
        with out.open("w") as sink:
            code = subprocess.call(command, stdout=sink, stderr=subprocess.STDOUT, cwd=HERE.parent)
        print(f"   exit {code} after {time.monotonic() - began:.0f} s (load "
              f"{os.getloadavg()[0]:.2f}); tables in {out.relative_to(HERE.parent)}", flush=True)
        if code:
            failed.append(name)
            print(out.read_text()[-3000:], flush=True)
    print(f"\nall done in {time.monotonic() - started:.0f} s; "
          f"{'failed: ' + ', '.join(failed) if failed else 'every benchmark succeeded'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
