"""Darcy data generation speed: sampling the permeability and the direct solve, per resolution.

The solve runs with the default thread pool (one thread per CPU) and, for comparison,
with one thread.

Usage: python benchmarks/darcy_generation.py
Writes benchmarks/results/darcy_generation.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from oplearn.pdes import Darcy
from oplearn.solvers.elliptic import solve_dirichlet

ROOT = Path(__file__).resolve().parents[1]
#: (nodes per dimension, samples timed)
CASES = ((64, 32), (128, 16), (256, 4))


def measure(pde: Darcy, resolution: int, n: int) -> dict:
    grid = pde.grid(resolution)
    generator = torch.Generator().manual_seed(0)
    pde.sample_input(1, grid, generator)  # warm up: allocations, basis matrices
    t0 = time.perf_counter()
    a = pde.sample_input(n, grid, generator)
    t1 = time.perf_counter()
    u = pde.solve(a, grid)
    t2 = time.perf_counter()
    solve_dirichlet(a[:, 0], torch.full_like(a[:, 0], pde.forcing), grid, workers=1)
    t3 = time.perf_counter()
    residual = pde.residual(u, a, grid).abs().max().item()
    return {
        "resolution": resolution,
        "samples": n,
        "sample_seconds_per_sample": (t1 - t0) / n,
        "solve_seconds_per_sample": (t2 - t1) / n,
        "solve_seconds_per_sample_one_thread": (t3 - t2) / n,
        "samples_per_second": n / (t2 - t0),
        "max_residual": residual,
    }


def main() -> None:
    pde = Darcy()
    rows = [measure(pde, resolution, n) for resolution, n in CASES]
    print(
        f"{'grid':>7} {'samples':>8} {'GRF s/sample':>13} {'solve s/sample':>15} {'1 thread':>9} {'samples/s':>10} {'max residual':>13}"
    )
    for r in rows:
        print(
            f"{r['resolution']:>4}^2 {r['samples']:>8} {r['sample_seconds_per_sample']:>13.4f} "
            f"{r['solve_seconds_per_sample']:>15.4f} {r['solve_seconds_per_sample_one_thread']:>9.4f} "
            f"{r['samples_per_second']:>10.2f} {r['max_residual']:>13.2e}"
        )
    result = {
        "pde": pde.params(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results" / "darcy_generation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
