"""Darcy 32x32 accuracy target: train configs/darcy_fno.yaml on CPU, test at 32x32 and 64x64.

Usage: python benchmarks/darcy_accuracy.py [--epochs N] [--out runs/bench_darcy_fno]

Prints the test table, wall times, and writes benchmarks/results/darcy_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from oplearn.config import load_config
from oplearn.evaluate import evaluate_run, format_table
from oplearn.training.run import train
from oplearn.training.tasks import ensure_dataset

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "darcy_fno.yaml"))
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_darcy_fno"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    config = load_config(args.config, args.set)
    t0 = time.perf_counter()
    for spec in [config.data.train_spec, *config.data.test]:
        ensure_dataset(spec)
    t_data = time.perf_counter() - t0
    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.perf_counter()
    train(config, args.out)
    t_train = time.perf_counter() - t0
    rows = evaluate_run(args.out, [t.path for t in config.data.test])
    print(format_table(rows))
    result = {
        "config": config.model_dump(mode="json"),
        "threads": torch.get_num_threads(),
        "data_seconds": t_data,
        "train_seconds": t_train,
        "results": rows,
    }
    print(f"data generation {t_data:.1f} s, training {t_train:.1f} s ({config.train.epochs} epochs)")
    out = ROOT / "benchmarks" / "results" / "darcy_accuracy.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
