"""``oplearn rollout``: a long autoregressive rollout of a trained one-step run and its statistics.

``oplearn rollout RUN --steps N --out FILE.h5`` starts from the first ``train.history`` frames
of the first ``--samples`` trajectories of a reference file (``--data``, default the config's
first test file, else its training file), applies the model ``N`` times and writes:

``FILE.h5``    ``rollout (samples, N, C, *spatial)`` and ``initial (samples, history, C, *spatial)``,
               with the run, data, seed and grid as attributes (written whole, then renamed)
``FILE.json``  the statistics (:mod:`oplearn.rollout_stats`): correlation time, per-step error and
               correlation over the steps the reference covers, blow-up step, the long-term
               statistics of the rollout and of the reference file (all its samples and frames),
               their errors, the diagnosis (``ok``/``damped``/``inflated``/``exploding``) and the model's time
               per step; also copied to ``RUN/rollout.json``, which ``oplearn report`` shows.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import torch

from oplearn.errors import OplearnError

if TYPE_CHECKING:
    from oplearn.training.rundir import Run

#: The tasks whose models step trajectories forward (``(batch, history * C, *spatial) -> (batch, C, *spatial)``).
ROLLOUT_TASKS = ("one_step", "refiner", "coarse_graining")
#: PDEs whose single 2D channel is a vorticity (statistics use its velocity).
VORTICITY_PDES = ("kolmogorov_flow", "navier_stokes")
#: Name of the statistics copy in the run directory.
RUN_STATS = "rollout.json"


def viscosity_of(meta: dict) -> float:
    """The viscosity in a dataset's PDE parameters (``nu``, or ``1 / re``); 1 when it has none (KS)."""
    params = meta.get("pde_params") or {}
    if "nu" in params:
        return float(params["nu"])
    if "re" in params:
        return 1.0 / float(params["re"])
    return 1.0


def reference_path(run: Run, data: str | None) -> Path:
    if data is not None:
        return Path(data)
    if run.config.data.test:
        return Path(run.config.data.test[0].path)
    return Path(run.config.data.path)


def long_rollout(
    run_dir: str | Path,
    steps: int,
    out: str | Path,
    data: str | None = None,
    samples: int = 4,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
) -> dict:
    """Roll the run out ``steps`` times and write ``out`` and its statistics (see the module docstring);
    returns the statistics."""
    from oplearn.evaluate import load_test_data
    from oplearn.grids import Grid
    from oplearn.rollout_stats import (
        blow_up_step,
        compare_statistics,
        correlation_time,
        diagnose,
        long_run_statistics,
        pearson_correlation,
        per_step_error,
    )
    from oplearn.training.rollout import full_trajectory, rollout
    from oplearn.training.rundir import open_run, write_json
    from oplearn.training.tasks import EvaluateOptions

    out = Path(out)
    run = open_run(run_dir)
    if run.config.train.task not in ROLLOUT_TASKS:
        raise OplearnError(
            f"rollout needs a run of a one-step task ({', '.join(ROLLOUT_TASKS)}); '{run_dir}' was "
            f"trained with train.task={run.config.train.task}"
        )
    path = reference_path(run, data)
    reference = load_test_data(run, path, EvaluateOptions())
    trajectory = full_trajectory(reference.inputs, reference.outputs, reference.time)
    history = run.config.train.history
    if trajectory.shape[1] <= history:
        raise OplearnError(
            f"'{path}' holds trajectories of {trajectory.shape[1]} frames; rollout starts from {history}"
        )
    samples = min(samples, len(trajectory))
    grid = Grid(tuple(reference.grid.shape), reference.grid.domain, reference.grid.periodic)
    vorticity = reference.meta.get("pde") in VORTICITY_PDES
    viscosity = viscosity_of(reference.meta)

    torch.manual_seed(seed)  # the refiner's noise
    model = run.model.to(device)
    initial = trajectory[:samples, :history].float()
    start = time.perf_counter()
    with torch.no_grad():
        pred = torch.cat(
            [rollout(model, initial[i : i + batch_size].to(device), steps).cpu() for i in range(0, samples, batch_size)]
        )
    seconds = time.perf_counter() - start

    truth = trajectory[:samples, history : history + steps]
    covered = truth.shape[1]
    reference_stats = long_run_statistics(trajectory[:, history:].double(), grid, vorticity, viscosity)
    rollout_stats = long_run_statistics(pred.double(), grid, vorticity, viscosity)
    stats = {
        "run": str(run_dir),
        "data": str(path),
        "steps": steps,
        "samples": samples,
        "seed": seed,
        "frame_interval": float(reference.time[1] - reference.time[0])
        if reference.time is not None and len(reference.time) > 1
        else None,
        "seconds_per_step": seconds / steps,
        "status": diagnose(pred, reference_stats, grid, vorticity),
        "blow_up_step": [int(s) for s in blow_up_step(pred, reference_stats["rms"])],
        "reference_steps": covered,
        "correlation_time": {str(k): v for k, v in correlation_time(pred[:, :covered], truth).items()},
        "correlation": pearson_correlation(pred[:, :covered], truth).mean(0).tolist(),
        "relative_l2_per_step": per_step_error(pred[:, :covered], truth).tolist(),
        "statistics": rollout_stats,
        "reference": reference_stats,
        "errors": compare_statistics(rollout_stats, reference_stats),
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with h5py.File(partial, "w") as f:
            f["rollout"] = pred.numpy()
            f["initial"] = initial.numpy()
            f.attrs.update(
                {
                    "run": str(run_dir),
                    "data": str(path),
                    "steps": steps,
                    "seed": seed,
                    "grid": json.dumps(grid.to_dict()),
                    "history": history,
                }
            )
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    write_json(out.with_suffix(".json"), stats)
    write_json(Path(run_dir) / RUN_STATS, stats)
    return stats


def cmd_rollout(args: argparse.Namespace) -> None:
    stats = long_rollout(args.run_dir, args.steps, args.out, args.data, args.samples, args.seed, args.batch_size)
    times = ", ".join(f"{k}: {v}" for k, v in stats["correlation_time"].items())
    errors = stats["errors"]
    print(
        f"rolled out {stats['samples']} trajectories for {stats['steps']} steps ({stats['seconds_per_step'] * 1e3:.2f} ms per step): "
        f"{stats['status']}"
    )
    print(f"correlation time (steps above correlation {times}) over the {stats['reference_steps']} reference steps")
    print(
        f"long-term statistics vs '{stats['data']}': energy {errors['energy_relative_error']:.3f}, "
        f"spectrum (log) {errors['spectrum_log_error']:.3f}, PDF {errors['pdf_distance']:.3f}"
    )
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")


def add_command(sub: argparse._SubParsersAction) -> None:
    from oplearn.arguments import file_argument, positive_int

    p = sub.add_parser(
        "rollout",
        help="long rollout of a one-step run: trajectory file and statistics",
        description="Roll a trained one-step run (train.task one_step, refiner or coarse_graining) out "
        "for --steps steps from the first frames of reference trajectories; write the trajectories "
        "(HDF5) and their statistics against the reference (FILE.json, also RUN_DIR/rollout.json for "
        "'oplearn report').",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of 'oplearn train'")
    p.add_argument("--steps", type=positive_int, required=True, help="model steps to take")
    p.add_argument("--out", required=True, type=file_argument(), metavar="FILE.h5", help="trajectory file to write")
    p.add_argument(
        "--data",
        metavar="FILE",
        help="reference trajectories (default: the config's first test file, else its training file)",
    )
    p.add_argument("--samples", type=positive_int, default=4, help="trajectories to roll out")
    p.add_argument("--seed", type=int, default=0, help="seed of the model's noise (PDE-Refiner)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="trajectories per forward pass")
    p.set_defaults(func=cmd_rollout)
