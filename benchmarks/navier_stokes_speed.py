"""Speed of the time-dependent reference solvers, and their observed convergence orders.

1. Navier-Stokes, nu = 1e-3, 256^2, batch 20, dt = 1e-4 (the FNO recipe): a short horizon
   (``--horizon``, 0.05 time units = 500 steps by default) is timed and extrapolated to
   simulated time units per second, to one batch of T = 50 and to the cost per 64^2
   training trajectory (solved at 256^2, T = 50, amortised over the batch of 20).
2. Generator throughput (``pde.generate``: sampling, solving, subsampling) of Burgers
   (FNO: 8192-point solve, 1024 stored, u(t = 1)), PDEBench Burgers (1024 points, 201
   frames on [0, 2]) and advection (1024 points, 201 frames), in samples per second.
3. The observed orders of the convergence studies in ``tests/time_problems.py``.

Each timing runs with one torch thread and with the default thread count (one per CPU).

Usage: python benchmarks/navier_stokes_speed.py [--horizon 0.05] [--device cpu]
Writes benchmarks/results/time_dependent_generation.json (``..._<device>.json`` for another
device) and benchmarks/results/convergence_time_dependent.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from oplearn.pdes import Advection, Burgers, BurgersPDEBench, NavierStokes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import time_problems  # noqa: E402
from problems import observed_order  # noqa: E402

NS_BATCH, NS_RESOLUTION, NS_T = 20, 256, 50.0
#: (name, PDE, stored resolution, samples timed)
GENERATORS = (
    ("burgers (8192 -> 1024, t = 1)", Burgers(refine=8), 1024, 32),
    ("burgers_pdebench (1024, 201 frames)", BurgersPDEBench(), 1024, 32),
    ("advection (1024, 201 frames)", Advection(), 1024, 256),
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def navier_stokes(horizon: float, device: torch.device) -> dict:
    pde = NavierStokes(nu=1e-3, t_final=horizon, n_times=1)
    grid = pde.grid(NS_RESOLUTION)
    w0 = pde.sample_input(NS_BATCH, grid, torch.Generator().manual_seed(0)).to(device)
    NavierStokes(nu=1e-3, t_final=10 * pde.dt, n_times=1).solve(w0, grid)  # warm up (plans, allocations)
    synchronize(device)
    t0 = time.perf_counter()
    w = pde.solve(w0, grid)
    synchronize(device)
    seconds = time.perf_counter() - t0
    assert torch.isfinite(w).all()
    steps = round(horizon / pde.dt)
    units_per_second = horizon / seconds
    return {
        "batch": NS_BATCH,
        "resolution": NS_RESOLUTION,
        "dt": pde.dt,
        "horizon_timed": horizon,
        "steps_timed": steps,
        "seconds_timed": seconds,
        "steps_per_second": steps / seconds,
        "time_units_per_second": units_per_second,
        "seconds_per_batch_T50_extrapolated": NS_T / units_per_second,
        "seconds_per_64x64_trajectory_T50_extrapolated": NS_T / units_per_second / NS_BATCH,
    }


def generator_throughput(pde, resolution: int, n: int) -> dict:
    pde.generate(2, resolution, torch.Generator().manual_seed(1))  # warm up
    t0 = time.perf_counter()
    _inputs, outputs = pde.generate(n, resolution, torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - t0
    assert torch.isfinite(outputs).all()
    return {
        "resolution": resolution,
        "solve_resolution": resolution * pde.refine,
        "frames": len(pde.times),
        "samples": n,
        "seconds": seconds,
        "samples_per_second": n / seconds,
    }


def with_threads(threads: int, fn, *args):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


def convergence() -> list[dict]:
    rows = []
    for stepper in time_problems.STEPPERS:
        for ode in time_problems.SEMILINEAR_ODES:
            steps, errors = time_problems.ode_errors(stepper, ode)
            rows.append(
                {
                    "study": f"{stepper.__name__} on ODE '{ode.name}'",
                    "kind": "time",
                    "expected": stepper.order,
                    "observed": observed_order(steps, errors),
                    "sizes": steps,
                    "errors": errors,
                }
            )
    for study, kind, expected, fn in (
        ("Burgers, Cole-Hopf, ETDRK4, n = 64", "time", 4, time_problems.burgers_time_errors),
        (
            "Navier-Stokes, manufactured forced flow, Crank-Nicolson/Heun, 16^2",
            "time",
            2,
            time_problems.navier_stokes_time_errors,
        ),
        ("Burgers, Cole-Hopf, resolution 8..64", "space", "spectral", time_problems.burgers_space_errors),
        (
            "Navier-Stokes, manufactured steady flow, resolution 8..32",
            "space",
            "spectral",
            time_problems.navier_stokes_space_errors,
        ),
    ):
        sizes, errors = fn()
        rows.append(
            {
                "study": study,
                "kind": kind,
                "expected": expected,
                "observed": observed_order(sizes, errors) if kind == "time" else None,
                "sizes": sizes,
                "errors": errors,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=float, default=0.05, help="Navier-Stokes time units actually simulated")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads})

    ns = {threads: with_threads(threads, navier_stokes, args.horizon, device) for threads in thread_counts}
    print(
        f"Navier-Stokes nu=1e-3, {NS_RESOLUTION}^2, batch {NS_BATCH}, dt=1e-4, {args.horizon} time units timed on {device}"
    )
    print(
        f"{'threads':>7} {'steps/s':>8} {'time units/s':>13} {'T=50 batch (h)':>15} {'per 64^2 trajectory (min)':>26}"
    )
    for threads, r in ns.items():
        print(
            f"{threads:>7} {r['steps_per_second']:>8.1f} {r['time_units_per_second']:>13.4f} "
            f"{r['seconds_per_batch_T50_extrapolated'] / 3600:>15.2f} {r['seconds_per_64x64_trajectory_T50_extrapolated'] / 60:>26.1f}"
        )

    generators = []
    if device.type == "cpu":
        print(f"\n{'generator':<38} {'threads':>7} {'solve n':>8} {'samples':>8} {'samples/s':>10}")
        for name, pde, resolution, n in GENERATORS:
            for threads in thread_counts:
                r = {
                    "generator": name,
                    "threads": threads,
                    **with_threads(threads, generator_throughput, pde, resolution, n),
                }
                generators.append(r)
                print(f"{name:<38} {threads:>7} {r['solve_resolution']:>8} {n:>8} {r['samples_per_second']:>10.2f}")

    machine = {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    result = {
        "machine": machine,
        "navier_stokes": [{"threads": t, **r} for t, r in ns.items()],
        "generators": generators,
    }
    suffix = "" if device.type == "cpu" else f"_{device.type}"
    out = ROOT / "benchmarks" / "results" / f"time_dependent_generation{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")

    if device.type == "cpu":
        rows = with_threads(1, convergence)
        print(f"\n{'convergence study':<66} {'expected':>9} {'observed':>9} {'finest error':>13}")
        for r in rows:
            observed = "-" if r["observed"] is None else f"{r['observed']:.3f}"
            print(f"{r['study']:<66} {r['expected']!s:>9} {observed:>9} {r['errors'][-1]:>13.2e}")
        out = ROOT / "benchmarks" / "results" / "convergence_time_dependent.json"
        out.write_text(json.dumps({"rows": rows}, indent=2))
        print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
