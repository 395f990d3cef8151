"""Data generation speed of the Poisson, Helmholtz and diffusion-reaction PDEs (samples per second).

Each case times ``pde.generate(n, resolution)`` (sampling the inputs and the reference solve)
after a small warm-up, once with one torch thread and once with the default number. The
diffusion-reaction case runs at PDEBench's resolution (128^2 cells, 101 frames to t = 5).
Many small tensor operations (the RK4 stages) and the sparse solves can be much slower with
several threads when other jobs share the cores: the load average is recorded with the results.

Usage: python benchmarks/generation_throughput.py
Writes benchmarks/results/elliptic_generation.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from oplearn.pdes import PDE, DiffusionReaction, Helmholtz, Poisson

ROOT = Path(__file__).resolve().parents[1]
#: (PDE, nodes or cells per dimension, samples timed), each run with 1 and the default threads
CASES = (
    (Poisson(), 64, 32),
    (Poisson(), 128, 16),
    (Helmholtz(), 64, 32),
    (Helmholtz(), 128, 16),
    (DiffusionReaction(), 128, 2),
)


def measure(pde: PDE, resolution: int, n: int, threads: int | None) -> dict:
    default_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        pde.generate(1, 16, generator)  # warm-up: first-call initialisation of torch and scipy
        t0 = time.perf_counter()
        _inputs, outputs = pde.generate(n, resolution, generator)
        seconds = time.perf_counter() - t0
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(default_threads)
    assert torch.isfinite(outputs).all()
    return {
        "pde": pde.name,
        "params": pde.params(),
        "resolution": resolution,
        "samples": n,
        "torch_threads": used,
        "output_shape": list(outputs.shape[1:]),
        "seconds_per_sample": seconds / n,
        "samples_per_second": n / seconds,
    }


def main() -> None:
    rows = [measure(pde, resolution, n, threads) for pde, resolution, n in CASES for threads in (1, None)]
    print(f"{'pde':>19} {'grid':>6} {'samples':>8} {'threads':>8} {'s/sample':>9} {'samples/s':>10}")
    for r in rows:
        print(
            f"{r['pde']:>19} {r['resolution']:>4}^2 {r['samples']:>8} {r['torch_threads']:>8} "
            f"{r['seconds_per_sample']:>9.4f} {r['samples_per_second']:>10.2f}"
        )
    result = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "rows": rows,
    }
    out = ROOT / "benchmarks" / "results" / "elliptic_generation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
