"""Merge kernels: swarmlearning.merge against the memory copy bandwidth, numpy one-liners and
Flower's aggregation functions, all in one process.

What is measured:

a. the copy bandwidth: np.copyto(dst, src) on a large float32 array (--copy-mib, default 512
   MiB, larger than this machine's caches), bytes of one array per second, best of 5;
b. for each method x peers x size: `merge(method, models, weights, backend=...)` with each
   backend, numpy and torch (the CPU build; both are timed when torch is installed), float32
   models of 4 tensors together holding `size` parameters and integer weights
   1..100 (like nodeWeightage), best of --repeat. Throughput is input bytes (peers x size x 4)
   per second. The baselines get the same models:
   - mean: np.average(np.stack(...), axis=0, weights=w) and Flower's aggregate();
   - coordmedian: np.median(np.stack(...), axis=0) and Flower's aggregate_median(), both
     unweighted, so the table has the weighted merge and the merge with equal weights (which
     then computes exactly np.median);
   - geomedian: a plain numpy Weiszfeld on the stacked, concatenated vectors (same start, same
     smoothing, same stopping rule).
   The median and Weiszfeld baselines run once (they are slow); the others --repeat times. Each
   result is checked against its numpy baseline.
c. ratios: ours / copy bandwidth, ours / numpy, ours / Flower.

The column "others" is the CPU (in cores) that other processes on the machine used while a
method was measured (from /proc/stat): on a shared machine it tells which rows were disturbed.
A measurement during which others used more than --busy cores is repeated after --pause
seconds, up to --retries times, and the quietest attempt is kept.

Combinations whose models and baseline temporaries would need more than --max-gib are skipped,
and said so. Sizes of 1e8 parameters are only run with --big.

d. with --gpu, where a CUDA device exists: the weighted mean and the coordinate median as plain
   torch ops on the device, models already in device memory (swarmlearning.merge itself runs on
   the CPU; these rows say what a device-resident merge could reach).

Run: .venv/bin/python bench/merge.py [--peers 2,4,8,16] [--sizes 1e6,1e7] [--repeat 3]
     [--methods mean,coordmedian,geomedian] [--big] [--gpu] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from swarmlearning.merge import METHODS, merge
from swarmlearning.merge.kernels import torch_module

try:
    from flwr.server.strategy.aggregate import aggregate, aggregate_median
except ImportError:  # the optional [bench] extra
    aggregate = aggregate_median = None

RESULTS = Path(__file__).resolve().parent / "results" / "merge.json"
LAYERS = 4
GB = 1e9


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(fastest wall time of `repeat` calls, the last call's result)."""
    best = float("inf")
    result = None
    for _ in range(max(repeat, 1)):
        result = None  # free the previous result before the next call
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def copy_bandwidth(mib: int) -> float:
    """Bytes per second of np.copyto on a float32 array of `mib` MiB (best of 5)."""
    src = np.random.default_rng(0).random(mib * (1 << 18), dtype=np.float32)
    dst = np.empty_like(src)
    dst.fill(1.0)  # touch every page before timing
    seconds, _ = best_time(lambda: np.copyto(dst, src), 5)
    return src.nbytes / seconds


def make_models(peers: int, size: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """`peers` float32 models of LAYERS tensors holding `size` parameters together."""
    rng = np.random.default_rng(seed)
    parts = [size // LAYERS + (1 if i < size % LAYERS else 0) for i in range(LAYERS)]
    return [{f"layer{i}": rng.standard_normal(n, dtype=np.float32) for i, n in enumerate(parts)}
            for _ in range(peers)]


def np_average(models: list[dict[str, np.ndarray]], w: list[int]) -> list[np.ndarray]:
    return [np.average(np.stack([m[name] for m in models]), axis=0, weights=w)
            for name in models[0]]


def np_median(models: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    return [np.median(np.stack([m[name] for m in models]), axis=0) for name in models[0]]


def np_weiszfeld(models: list[dict[str, np.ndarray]], w: list[int]) -> tuple[np.ndarray, int]:
    """Weighted geometric median of the concatenated models by plain Weiszfeld:
    (the result, the number of steps)."""
    x = np.stack([np.concatenate([m[name] for name in m]) for m in models])
    wn = np.asarray(w, dtype=np.float64) / sum(w)
    z = (wn @ x).astype(np.float32)
    d = np.linalg.norm(x - z, axis=1)
    f = float(wn @ d)
    eps = 1e-8 * f
    steps = 0
    while f > 0 and steps < 100:
        c = wn / np.maximum(d, eps)
        z = ((c / c.sum()) @ x).astype(np.float32)
        d = np.linalg.norm(x - z, axis=1)
        steps += 1
        f, previous = float(wn @ d), f
        if abs(previous - f) < 1e-6 * previous:
            break
    return z, steps


def flower_results(models: list[dict[str, np.ndarray]], w: list[int]) -> list:
    return [([m[name] for name in m], int(wi)) for m, wi in zip(models, w, strict=True)]


def concat(result: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([result[name].ravel() for name in result])


def check(method: str, ours: dict[str, np.ndarray], baseline: Any) -> str:
    """Compare our result with the numpy baseline's: 'ok' or what differs."""
    got = concat(ours).astype(np.float64)
    if method == "geomedian":
        ref = np.asarray(baseline, dtype=np.float64)
        scale = max(float(np.abs(ref).max()), 1e-30)
        diff = float(np.abs(got - ref).max()) / scale
        return "ok" if diff < 1e-2 else f"max difference {diff:.2g} of the largest value"
    ref = np.concatenate([np.ravel(b) for b in baseline]).astype(np.float64)
    if method == "coordmedian (equal w)":
        return "ok" if np.array_equal(got, ref.astype(np.float32)) else "differs from np.median"
    if method.startswith("mean"):
        return "ok" if np.allclose(got, ref, rtol=1e-4, atol=1e-5) else "differs from np.average"
    return "-"


def busy_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy since boot (Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def need_bytes(peers: int, size: int) -> int:
    """Models plus the baselines' temporaries (stacked copies, float64 products): about 4x."""
    return 4 * peers * size * 4


def run_combo(method: str, peers: int, size: int, models: list[dict[str, np.ndarray]],
              w: list[int], repeat: int, copy_bps: float) -> list[dict[str, Any]]:
    nbytes = peers * size * 4
    rows: list[dict[str, Any]] = []

    def row(name: str, ours_s: float, numpy_s: float | None, flower_s: float | None,
            status: str, **extra: Any) -> None:
        ours = nbytes / ours_s
        entry = {
            "method": name, "peers": peers, "size": size, "input_bytes": nbytes,
            "ours_s": ours_s, "ours_gbps": ours / GB,
            "numpy_s": numpy_s, "numpy_gbps": nbytes / numpy_s / GB if numpy_s else None,
            "flower_s": flower_s,
            "flower_gbps": nbytes / flower_s / GB if flower_s else None,
            "ours_over_copy": ours / copy_bps,
            "ours_over_numpy": numpy_s / ours_s if numpy_s else None,
            "ours_over_flower": flower_s / ours_s if flower_s else None,
            "check": status, **extra,
        }
        rows.append(entry)

    fw = flower_results(models, w)
    backends = ["numpy", "torch"] if torch_module() is not None else ["numpy"]
    if method == "mean":
        numpy_s, baseline = best_time(lambda: np_average(models, w), repeat)
        flower_s = best_time(lambda: aggregate(fw), repeat)[0] if aggregate else None
        for backend in backends:
            ours_s, ours = best_time(lambda b=backend: merge("mean", models, w, backend=b),
                                     repeat)
            row(f"mean ({backend})", ours_s, numpy_s, flower_s, check("mean", ours, baseline))
    elif method == "coordmedian":
        numpy_s, baseline = best_time(lambda: np_median(models), 1)
        flower_s = best_time(lambda: aggregate_median(fw), 1)[0] if aggregate_median else None
        for backend in backends:
            ours_s, _ = best_time(lambda b=backend: merge("coordmedian", models, w, backend=b),
                                  repeat)
            row(f"coordmedian ({backend})", ours_s, numpy_s, flower_s, "-")
            ours_s, ours = best_time(lambda b=backend: merge("coordmedian", models,
                                                             [1] * peers, backend=b), repeat)
            row(f"coordmedian eq. ({backend})", ours_s, numpy_s, flower_s,
                check("coordmedian (equal w)", ours, baseline))
    else:
        numpy_s, (baseline, steps) = best_time(lambda: np_weiszfeld(models, w), 1)
        for backend in backends:
            ours_s, ours = best_time(lambda b=backend: merge("geomedian", models, w, backend=b),
                                     repeat)
            row(f"geomedian ({backend})", ours_s, numpy_s, None,
                check("geomedian", ours, baseline), weiszfeld_steps=steps)
    return rows


def measure(method: str, peers: int, size: int, models: list[dict[str, np.ndarray]],
            w: list[int], args: argparse.Namespace, copy_bps: float) -> list[dict[str, Any]]:
    """run_combo, with the CPU other processes used meanwhile ("other_cores"). On a shared
    machine, a run during which others used more than --busy cores is tried again after a pause
    (--retries times at most); the quietest attempt is kept."""
    kept: list[dict[str, Any]] = []
    for attempt in range(args.retries + 1):
        wall, busy, own = time.perf_counter(), busy_seconds(), own_seconds()
        new = run_combo(method, peers, size, models, w, args.repeat, copy_bps)
        wall = time.perf_counter() - wall
        end = busy_seconds()
        others = None if busy is None or end is None else max(
            0.0, (end - busy - (own_seconds() - own)) / wall)
        for r in new:
            r["other_cores"] = others
            r["attempt"] = attempt + 1
        if not kept or (others is not None and others < kept[0]["other_cores"]):
            kept = new
        if others is None or others <= args.busy:
            break
        print(f"  ({method}, {peers} peers x {size / 1e6:g}M: other processes used "
              f"{others:.2f} cores; measuring again in {args.pause:g} s)", flush=True)
        time.sleep(args.pause)
    return kept


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| method                     | peers |  size | ours GB/s | numpy GB/s | Flower GB/s "
            "| ours/copy | ours/numpy | ours/Flower | check | others |")
    rule = ("|----------------------------|-------|-------|-----------|------------|-------------"
            "|-----------|------------|-------------|-------|--------|")
    lines = [head, rule]
    for r in rows:
        lines.append(
            f"| {r['method']:<26} | {r['peers']:>5} | {r['size'] / 1e6:>4g}M "
            f"| {r['ours_gbps']:>9.2f} | {fmt(r['numpy_gbps'], '>10.2f'):>10} "
            f"| {fmt(r['flower_gbps'], '>11.2f'):>11} | {r['ours_over_copy']:>8.0%} "
            f"| {ratio(r['ours_over_numpy']):>10} "
            f"| {ratio(r['ours_over_flower']):>11} | {r['check']:<5} "
            f"| {fmt(r.get('other_cores'), '>6.2f'):>6} |")
    return "\n".join(lines)


def gpu_rows(peers: int, size: int, models: list[dict[str, np.ndarray]], w: list[int],
             repeat: int) -> list[dict[str, Any]]:
    """The same weighted mean and coordinate median as plain torch on a CUDA device, the models
    already in device memory (what a GPU-resident merge could reach; swarmlearning.merge itself
    runs on the CPU). Empty when there is no CUDA device."""
    torch = torch_module()
    if torch is None or not torch.cuda.is_available():
        return []
    device = torch.device("cuda")
    flat = [torch.from_numpy(concat(m)).to(device) for m in models]
    coefs = [x / sum(w) for x in w]
    nbytes = peers * size * 4

    def mean() -> Any:
        out = torch.zeros_like(flat[0])
        for x, c in zip(flat, coefs, strict=True):
            out.add_(x, alpha=c)
        torch.cuda.synchronize()
        return out

    def median() -> Any:
        out = torch.stack(flat).median(dim=0).values
        torch.cuda.synchronize()
        return out

    rows = []
    for name, fn in (("mean (cuda, torch ops)", mean), ("median (cuda, torch.median)", median)):
        fn()
        seconds, _ = best_time(fn, repeat)
        rows.append({"method": name, "peers": peers, "size": size, "input_bytes": nbytes,
                     "ours_s": seconds, "ours_gbps": nbytes / seconds / GB,
                     "device": torch.cuda.get_device_name(0)})
    flat.clear()
    torch.cuda.empty_cache()
    return rows


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "numpy": np.__version__}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    try:
        import flwr
        info["flwr"] = flwr.__version__
    except ImportError:
        info["flwr"] = None
    return info


def parse_list(text: str, cast: Callable[[str], Any]) -> list:
    return [cast(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="2,4,8,16", help="peer counts (default %(default)s)")
    parser.add_argument("--sizes", default="1e6,1e7",
                        help="parameters per model (default %(default)s)")
    parser.add_argument("--big", action="store_true", help="also run 1e8 parameters per model")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement, best kept (default %(default)s; the median "
                             "and Weiszfeld baselines run once)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="methods (default %(default)s)")
    parser.add_argument("--max-gib", type=float, default=8.0,
                        help="skip combinations needing more memory (default %(default)g)")
    parser.add_argument("--busy", type=float, default=0.25,
                        help="measure again when other processes used more cores than this "
                             "(default %(default)g)")
    parser.add_argument("--retries", type=int, default=3,
                        help="how many times to measure again (default %(default)s)")
    parser.add_argument("--pause", type=float, default=10.0,
                        help="seconds to wait before measuring again (default %(default)g)")
    parser.add_argument("--copy-mib", type=int, default=512,
                        help="array size for the copy bandwidth (default %(default)s MiB)")
    parser.add_argument("--gpu", action="store_true",
                        help="also time the mean and median as torch ops on a CUDA device")
    parser.add_argument("--json", type=Path, default=RESULTS, metavar="PATH",
                        help="where to write the results (default bench/results/merge.json)")
    args = parser.parse_args(argv)
    peers_list = parse_list(args.peers, int)
    sizes = [int(float(s)) for s in parse_list(args.sizes, str)]
    if args.big and 100_000_000 not in sizes:
        sizes.append(100_000_000)
    methods = parse_list(args.methods, str.strip)
    unknown = set(methods) - set(METHODS)
    if unknown or args.repeat < 1 or min(peers_list, default=0) < 1 or not sizes:
        parser.error(f"bad arguments (methods must be among {', '.join(METHODS)})")
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    info = machine()
    print(f"Machine: {info.get('cpu', '?')}, {info['cpus']} CPUs; numpy {info['numpy']}, "
          f"torch {info['torch']} ({info.get('torch_threads', '-')} threads), "
          f"flwr {info['flwr'] or 'not installed'}")
    if aggregate is None:
        print("flwr not installed: the Flower columns are skipped")
    # warm up: import torch, start its threads
    warm = make_models(2, 1 << 18)
    for method in METHODS:
        merge(method, warm, [1, 2])
    copy_bps = copy_bandwidth(args.copy_mib)
    print(f"Copy bandwidth (np.copyto, {args.copy_mib} MiB float32): {copy_bps / GB:.2f} GB/s")
    rows: list[dict[str, Any]] = []
    gpu: list[dict[str, Any]] = []
    skipped: list[str] = []
    if args.gpu and not gpu_rows(2, 1 << 10, make_models(2, 1 << 10), [1, 1], 1):
        skipped.append("GPU rows: no CUDA device here")
        print("--gpu: no CUDA device here; the GPU rows are skipped")
    for size in sizes:
        for peers in peers_list:
            need = need_bytes(peers, size)
            if need > args.max_gib * (1 << 30):
                note = (f"skipped {peers} peers x {size:g} parameters: needs about "
                        f"{need / (1 << 30):.1f} GiB > --max-gib {args.max_gib:g}")
                print(note)
                skipped.append(note)
                continue
            models = make_models(peers, size)
            w = [int(x) for x in np.random.default_rng(peers).integers(1, 101, peers)]
            for method in methods:
                new = measure(method, peers, size, models, w, args, copy_bps)
                for r in new:
                    print(f"  {r['method']:<22} {peers:>2} peers x {size / 1e6:g}M: "
                          f"ours {r['ours_gbps']:.2f} GB/s, numpy {fmt(r['numpy_gbps'], '.2f')}"
                          f", Flower {fmt(r['flower_gbps'], '.2f')} GB/s [{r['check']}], "
                          f"others {fmt(r['other_cores'], '.2f')} cores", flush=True)
                rows.extend(new)
            if args.gpu:
                for r in gpu_rows(peers, size, models, w, args.repeat):
                    print(f"  {r['method']:<26} {peers:>2} peers x {size / 1e6:g}M: "
                          f"{r['ours_gbps']:.1f} GB/s on {r['device']}", flush=True)
                    gpu.append(r)
            del models
    total = time.perf_counter() - t0
    print()
    print(table(rows))
    for r in gpu:
        print(f"GPU: {r['method']}, {r['peers']} peers x {r['size'] / 1e6:g}M: "
              f"{r['ours_gbps']:.1f} GB/s ({r['device']})")
    print(f"\nCopy bandwidth: {copy_bps / GB:.2f} GB/s. Total benchmark time: {total:.0f} s. "
          f"Load average before/after: {load_before[0]:.2f}/{os.getloadavg()[0]:.2f}")
    result = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]) if argv is None
        else " ".join(argv),
        "machine": info, "copy_bandwidth_gbps": copy_bps / GB, "copy_mib": args.copy_mib,
        "repeat": args.repeat, "layers": LAYERS, "busy_limit_cores": args.busy, "rows": rows,
        "gpu_rows": gpu,
        "skipped": skipped,
        "total_s": total, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"Results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
