"""Peak memory of one 2D FNO training step against grid size, with and without activation
checkpointing, and the largest grid that trains in a memory budget, found by real runs.

Usage: python benchmarks/fno_memory.py [--sizes 256 512 768] [--budget-gib 22] [--batch 1]

A training step is forward, mean-square loss, backward and an AdamW step of
``FNO(3, 1, modes=12, width=32, n_layers=4, padding=0.125)`` on a random ``(batch, 3, n, n)``
input. Every step runs in a fresh process.

1. The step at each of ``--sizes`` is measured: peak resident memory of the process, and
   what the step added to it. A least-squares fit of memory linear in the number of grid
   points predicts the largest grid in the budget.
2. The largest grid is then *measured*: steps run at grid sizes bisected (to multiples of
   ``--step``) from that prediction, each in a child process that cannot use more than the
   budget. The child caps its address space (``RLIMIT_AS``) right after importing torch at
   its current size plus the budget minus its current resident memory, so everything it
   allocates afterwards fits in the budget (address space bounds resident memory); a step
   that needs more fails its allocation and the child exits. The largest grid whose step
   succeeded is reported, with its peak resident memory. The budget must leave 0.5 GiB of
   the memory available when the script starts (``MemAvailable``), so a search cannot
   take the machine down; on a 24 GiB machine the largest budget is about 22 GiB.

Writes benchmarks/results/fno_memory_<budget>gib.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
MARGIN_GIB = 0.5  # memory left to the system beyond the budget


def _field_kib(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {path}")


def _status_kib(field: str) -> int:
    return _field_kib("/proc/self/status", field)


def _meminfo_kib(field: str) -> int:
    return _field_kib("/proc/meminfo", field)


def one(n: int, batch: int, checkpointing: bool, budget_gib: float | None) -> dict:
    """One training step at ``n x n`` in this process, under ``budget_gib`` if given."""
    import torch

    from oplearn.models import FNO

    if budget_gib is not None:
        headroom = int(budget_gib * GIB) - _status_kib("VmRSS") * 1024
        limit = _status_kib("VmSize") * 1024 + headroom
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    torch.manual_seed(0)
    model = FNO(3, 1, modes=12, width=32, n_layers=4, padding=0.125)
    model.activation_checkpointing = checkpointing
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, n, n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model(x).square().mean().backward()
    optimizer.step()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "batch": batch,
        "checkpointing": checkpointing,
        "step_mib": (peak - before) / 1024,
        "peak_rss_mib": peak / 1024,
        "seconds": seconds,
    }


def run_child(n: int, batch: int, checkpointing: bool, budget_gib: float | None, timeout: float) -> dict:
    """:func:`one` in a fresh process; ``ok`` is false when the step did not fit the budget."""
    cmd = [sys.executable, __file__, "--one", str(n), str(int(checkpointing)), str(budget_gib), "--batch", str(batch)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode == 0:
        return {**json.loads(proc.stdout.strip().splitlines()[-1]), "ok": True}
    error = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    memory = proc.returncode < 0 or any(w in proc.stderr for w in ("alloc", "MemoryError", "memory"))
    if budget_gib is None or not memory:
        raise RuntimeError(f"the step at {n}^2 failed for a reason other than memory: {error}")
    return {"n": n, "batch": batch, "checkpointing": checkpointing, "ok": False, "error": error[:200]}


def largest_grid(
    predicted: int, batch: int, checkpointing: bool, budget_gib: float, step: int, timeout: float, log
) -> tuple[int | None, list[dict]]:
    """The largest multiple of ``step`` whose training step fits ``budget_gib``, by bisection
    from ``predicted``: bracket it (lower end succeeds, upper end fails), then halve."""
    runs: list[dict] = []

    def fits(n: int) -> bool:
        runs.append(run_child(n, batch, checkpointing, budget_gib, timeout))
        log(runs[-1])
        return runs[-1]["ok"]

    lo = max(step, predicted // step * step)
    hi = lo + step
    if fits(lo):
        while fits(hi):  # the prediction was low: widen upwards
            lo, hi = hi, hi + max(step, (hi // 8) // step * step)
    else:
        hi = lo
        while True:  # the prediction was high: widen downwards
            lo = (lo - max(step, (lo // 8) // step * step)) // step * step
            if lo < step:
                return None, runs
            if fits(lo):
                break
            hi = lo
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 768], help="grids measured for the fit")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--budget-gib",
        type=float,
        default=22.0,
        help="memory budget of the largest-grid search (a 24 GiB machine can give one process ~22)",
    )
    parser.add_argument("--step", type=int, default=32, help="grid sizes searched are multiples of this")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per step process")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # n, checkpointing, budget (GiB or None)
    args = parser.parse_args()
    if args.one:
        n, flag, budget = args.one
        print(json.dumps(one(int(n), args.batch, flag == "1", None if budget == "None" else float(budget))))
        return
    available = _meminfo_kib("MemAvailable") / 2**20
    if args.budget_gib > available - MARGIN_GIB:
        parser.error(
            f"--budget-gib {args.budget_gib:g} leaves less than {MARGIN_GIB:g} GiB of the {available:.1f} GiB "
            "this machine has available now; lower it (or stop other jobs)"
        )

    def log(row: dict) -> None:
        print(json.dumps(row), flush=True)

    rows = []
    for flag in (False, True):
        for n in args.sizes:
            rows.append(run_child(n, args.batch, flag, None, args.timeout))
            log(rows[-1])
    summary = {}
    for flag in (False, True):
        pts = [(r["n"] ** 2, r["peak_rss_mib"]) for r in rows if r["checkpointing"] == flag]
        mean_x = sum(p for p, _ in pts) / len(pts)
        mean_y = sum(m for _, m in pts) / len(pts)
        slope = sum((p - mean_x) * (m - mean_y) for p, m in pts) / sum((p - mean_x) ** 2 for p, _ in pts)
        intercept = mean_y - slope * mean_x
        predicted = math.isqrt(max(0, int((args.budget_gib * 1024 - intercept) / slope)))
        largest, runs = largest_grid(predicted, args.batch, flag, args.budget_gib, args.step, args.timeout, log)
        best = next((r for r in runs if r["ok"] and r["n"] == largest), None)
        summary["checkpointing" if flag else "plain"] = {
            "mib_per_megapoint": slope * 1e6,
            "predicted_n": predicted,
            "largest_n": largest,
            "largest_peak_rss_mib": best and best["peak_rss_mib"],
            "largest_step_seconds": best and best["seconds"],
            "runs": runs,
        }

    print(
        f"\nbatch {args.batch}, FNO modes 12, width 32, 4 layers, padding 0.125; one step = forward, loss, backward, AdamW"
    )
    print("| grid | step memory MiB (plain) | with checkpointing | step s (plain) | with checkpointing |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        p = next(r for r in rows if r["n"] == n and not r["checkpointing"])
        c = next(r for r in rows if r["n"] == n and r["checkpointing"])
        print(f"| {n}^2 | {p['step_mib']:.0f} | {c['step_mib']:.0f} | {p['seconds']:.2f} | {c['seconds']:.2f} |")
    for name, s in summary.items():
        found = (
            f"largest grid that trained: {s['largest_n']}^2 (peak RSS {s['largest_peak_rss_mib']:.0f} MiB, "
            f"step {s['largest_step_seconds']:.1f} s)"
            if s["largest_n"]
            else "no grid trained"
        )
        print(
            f"{name}: {s['mib_per_megapoint']:.0f} MiB per million grid points; in {args.budget_gib:g} GiB the fit "
            f"predicts {s['predicted_n']}^2; {found} ({len(s['runs'])} runs)"
        )
    out = ROOT / "benchmarks" / "results" / f"fno_memory_{args.budget_gib:g}gib.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(
        json.dumps({"rows": rows, "summary": summary, "budget_gib": args.budget_gib, "step": args.step}, indent=2)
    )
    os.replace(tmp, out)
    print(f"written {out}")


if __name__ == "__main__":
    main()
