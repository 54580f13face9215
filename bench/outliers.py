"""What leaving far outliers out costs a median merge: `robust_merge` (what an SL leader runs)
against `merge` on the same models, in one process.

For coordmedian and geomedian, at each peer count and size (float32 models of 4 tensors,
honest models a small spread around one model, integer weights 1..100):
- clean: every model honest; robust_merge adds the distance of each model from the result
  (coordmedian: one more pass over the inputs; geomedian: nothing, Weiszfeld has them) and
  leaves nothing out;
- attacked: one model sign-flipped; robust_merge finds it far and merges the rest again.
The baseline in each row is `merge` of the same models (for "attacked", the plain merge that
the flipped model pulls towards zero). Best of --repeat.

Run: .venv/bin/python bench/outliers.py [--peers 4,8] [--sizes 1e6,1e7] [--repeat 3]
     [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import describe, machine, table, write_json  # noqa: E402
from merge import LAYERS, best_time  # noqa: E402

from swarmlearning.merge import merge, robust_merge  # noqa: E402

METHODS = ("coordmedian", "geomedian")


def honest_models(peers: int, size: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`peers` models near one common model (spread 1 % of its scale)."""
    rng = np.random.default_rng(seed)
    parts = [size // LAYERS + (1 if i < size % LAYERS else 0) for i in range(LAYERS)]
    centre = [rng.standard_normal(n, dtype=np.float32) for n in parts]
    return [{f"layer{i}": c + np.float32(0.01) * rng.standard_normal(c.size, dtype=np.float32)
             for i, c in enumerate(centre)} for _ in range(peers)]


def measure(peers: int, size: int, repeat: int) -> list[dict[str, Any]]:
    models = honest_models(peers, size)
    weights = list(np.random.default_rng(1).integers(1, 101, peers))
    attacked = [{name: -value for name, value in models[0].items()}, *models[1:]]
    rows = []
    for method in METHODS:
        for case, inputs in (("clean", models), ("attacked", attacked)):
            plain_s, _ = best_time(lambda m=method, x=inputs: merge(m, x, weights), repeat)
            robust_s, (_, dropped) = best_time(
                lambda m=method, x=inputs: robust_merge(m, x, weights), repeat)
            assert len(dropped) == (1 if case == "attacked" else 0), dropped
            rows.append({"method": method, "case": case, "peers": peers, "size": size,
                         "merge_s": plain_s, "robust_s": robust_s,
                         "ratio": robust_s / plain_s, "left_out": len(dropped)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="4,8")
    parser.add_argument("--sizes", default="1e6,1e7")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    info = machine()
    print(describe(info))
    rows = []
    for peers in (int(p) for p in args.peers.split(",")):
        for size in (int(float(s)) for s in args.sizes.split(",")):
            rows += measure(peers, size, args.repeat)
    print(table(["method", "case", "peers", "params", "merge s", "robust_merge s", "ratio",
                 "left out"],
                [[r["method"], r["case"], r["peers"], f"{r['size']:.0e}", f"{r['merge_s']:.3f}",
                  f"{r['robust_s']:.3f}", f"{r['ratio']:.2f}", r["left_out"]] for r in rows]))
    write_json("outliers", {"machine": info, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
