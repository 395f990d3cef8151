"""Physics-informed training on Darcy 32x32: no solver data, all of it, or 10% of it plus the PDE.

Usage: python benchmarks/pino_darcy.py [--n N] [--epochs E] [--out runs/bench_pino]

Every variant trains the same FNO (configs/darcy_pino.yaml, made smaller here) for the same
number of optimiser steps on ``N`` input functions, then is scored by the relative L2 error
against the solver on the 200 test samples of configs/darcy_pino.yaml (last weights, no
validation-based selection):

* ``pino``: PDE loss only, preconditioned residual (train.physics.data_weight=0);
* ``pino_plain``: the same with the plain residual norm (precondition=false);
* ``data``: all N samples labelled, data loss only;
* ``data_10pct``: the first N/10 samples labelled, data loss only;
* ``data_10pct_pde``: the same labels, plus the PDE loss on them and on 9N/10 more inputs
  drawn from the PDE (train.physics.extra_inputs);
* ``data_10pct_pde_w10``: the same with ``data_weight=10`` (per labelled item).

Writes benchmarks/results/pino_darcy.json; ``--only`` reruns some variants and updates
their entries in it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from oplearn.config import load_config
from oplearn.evaluate import evaluate_run
from oplearn.training.run import train
from oplearn.training.tasks import ensure_dataset

ROOT = Path(__file__).resolve().parents[1]
MODEL = ["model.modes=8", "model.width=24", "model.n_layers=4", "model.projection_channels=64"]


def variants(n: int, epochs: int) -> dict[str, list[str]]:
    """The overrides of each variant: every one takes ``epochs * n / batch`` optimiser steps."""
    labelled = max(1, n // 10)
    data_only = ["train.physics=null"]
    full = [f"train.epochs={epochs}"]
    return {
        "pino": [f"data.n_train={n}", *full],
        "pino_plain": [f"data.n_train={n}", "train.physics.precondition=false", *full],
        "data": [f"data.n_train={n}", *data_only, *full],
        "data_10pct": [f"data.n_train={labelled}", *data_only, f"train.epochs={epochs * n // labelled}"],
        "data_10pct_pde": [
            f"data.n_train={labelled}",
            "train.physics.data_weight=1",
            f"train.physics.extra_inputs={n - labelled}",
            *full,
        ],
        "data_10pct_pde_w10": [
            f"data.n_train={labelled}",
            "train.physics.data_weight=10",
            f"train.physics.extra_inputs={n - labelled}",
            *full,
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "darcy_pino.yaml"))
    parser.add_argument("--n", type=int, default=200, help="input functions per variant")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--only", nargs="*", help="run these variants only")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_pino"))
    args = parser.parse_args()

    common = [*MODEL, "data.n_val=0", "train.lr=0.005", "train.threads=2"]
    base = load_config(args.config, common)
    for spec in [base.data.train_spec, *base.data.test]:
        ensure_dataset(spec)
    test = [t.path for t in base.data.test]
    out = ROOT / "benchmarks" / "results" / "pino_darcy.json"
    previous = json.loads(out.read_text()) if args.only and out.exists() else {}
    same = previous.get("n") == args.n and previous.get("epochs") == args.epochs
    results = previous.get("results", {}) if same else {}
    for name, overrides in variants(args.n, args.epochs).items():
        if args.only and name not in args.only:
            continue
        config = load_config(args.config, [*common, *overrides])
        run_dir = Path(args.out) / name
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        summary = train(config, run_dir, progress=False)
        seconds = time.perf_counter() - t0
        (row,) = evaluate_run(run_dir, test)
        items = config.data.n_train + (config.train.physics.extra_inputs if config.train.physics else 0)
        steps = config.train.epochs * -(-items // config.data.batch_size)
        results[name] = {
            "overrides": overrides,
            "test_relative_l2": row["metrics"]["relative_l2"],
            "steps": steps,
            "train_seconds": seconds,
            "epochs": summary["epochs"],
        }
        print(
            f"{name:16s} test rel. L2 {row['metrics']['relative_l2']:.4f}  steps {steps:4d}  {seconds:6.1f} s",
            flush=True,
        )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "n": args.n,
                "epochs": args.epochs,
                "common_overrides": common,
                "config": args.config,
                "threads": torch.get_num_threads(),
                "results": results,
            },
            indent=2,
        )
    )
    os.replace(tmp, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
