"""Peak memory of one 2D FNO training step against grid size, with and without activation
checkpointing, and the largest grid that fits a memory budget.

Usage: python benchmarks/fno_memory.py [--sizes 256 512 768] [--budget-gib 24] [--batch 1]

Each measurement runs in a fresh process (peak resident memory of that process minus its
resident memory before the step). The largest grid is extrapolated from a least-squares
fit of memory linear in the number of grid points (activations dominate), and the fit's
prediction is checked against the largest measured size. Writes
benchmarks/results/fno_memory.json.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(n: int, batch: int, checkpointing: bool) -> dict:
    import torch

    from oplearn.models import FNO

    torch.manual_seed(0)
    model = FNO(3, 1, modes=12, width=32, n_layers=4, padding=0.125)
    model.activation_checkpointing = checkpointing
    x = torch.randn(batch, 3, n, n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model(x).square().mean().backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "batch": batch, "checkpointing": checkpointing, "step_mib": (peak - before) / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 768])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--budget-gib", type=float, default=24.0)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.batch, args.one[1] == "1")))
        return
    rows = []
    for flag in (False, True):
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), str(int(flag)), "--batch", str(args.batch)],
                                 capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for flag in (False, True):
        pts = [(r["n"] ** 2, r["step_mib"]) for r in rows if r["checkpointing"] == flag]
        mean_x = sum(p for p, _ in pts) / len(pts)
        mean_y = sum(m for _, m in pts) / len(pts)
        slope = sum((p - mean_x) * (m - mean_y) for p, m in pts) / sum((p - mean_x) ** 2 for p, _ in pts)
        intercept = mean_y - slope * mean_x
        largest = math.isqrt(int((args.budget_gib * 1024 - 400 - intercept) / slope))  # 400 MiB: the runtime itself
        summary["checkpointing" if flag else "plain"] = {"mib_per_megapoint": slope * 1e6, "largest_n": largest}
    print(f"batch {args.batch}, FNO modes 12, width 32, 4 layers, padding 0.125")
    print("| grid | step memory MiB (plain) | with checkpointing | step s (plain) | with checkpointing |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        p = next(r for r in rows if r["n"] == n and not r["checkpointing"])
        c = next(r for r in rows if r["n"] == n and r["checkpointing"])
        print(f"| {n}^2 | {p['step_mib']:.0f} | {c['step_mib']:.0f} | {p['seconds']:.2f} | {c['seconds']:.2f} |")
    for name, s in summary.items():
        print(f"{name}: {s['mib_per_megapoint']:.0f} MiB per million grid points; largest grid in {args.budget_gib:g} GiB ~ {s['largest_n']}^2")
    (ROOT / "benchmarks" / "results" / "fno_memory.json").write_text(json.dumps({"rows": rows, "summary": summary, "budget_gib": args.budget_gib}, indent=2))


if __name__ == "__main__":
    main()
