"""Strong scaling of data-parallel training: 1 process vs K processes (torchrun, gloo on CPU).

Usage: python benchmarks/ddp_scaling.py [--procs 2] [--epochs 3] [--resolution 32] [--n 400]

The same run (Darcy, FNO 12 modes width 32, global batch 20) is trained by 1 process with
K threads and by K processes with 1 thread each, so both use the same cores; the
speed-up is the ratio of epoch times (median over epochs after the first). On a GPU
machine pass --device cuda to compare 1 GPU with K GPUs. Writes
benchmarks/results/ddp_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(config: Path, out: Path, procs: int, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    prefix = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)]
        if procs > 1
        else [sys.executable]
    )
    subprocess.run(
        [
            *prefix,
            "-m",
            "oplearn.cli",
            *(["--"] if procs > 1 else []),
            "train",
            str(config),
            "--out",
            str(out),
            "--no-progress",
            "--set",
            f"train.threads={threads}",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    seconds = [json.loads(line)["seconds"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(seconds[1:] or seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oplearn-ddp-"))
    config = {
        "seed": 0,
        "data": {
            "path": str(work / "train.h5"),
            "n_val": 20,
            "batch_size": 20,
            "generate": {"pde": "darcy", "n": args.n + 20, "resolution": args.resolution, "seed": 0},
        },
        "model": {"name": "fno", "modes": 12, "width": 32, "padding": 0.125},
        "train": {"epochs": args.epochs, "device": args.device},
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    single = run(path, work / "single", 1, args.procs)
    multi = run(path, work / "multi", args.procs, 1)
    shutil.rmtree(work)
    samples = args.n
    result = {
        "device": args.device,
        "procs": args.procs,
        "resolution": args.resolution,
        "train_samples": samples,
        "epoch_seconds_1_process": single,
        f"epoch_seconds_{args.procs}_processes": multi,
        "speedup": single / multi,
    }
    print(f"1 process x {args.procs} threads: {single:.2f} s/epoch ({samples / single:.0f} samples/s)")
    print(f"{args.procs} processes x 1 thread: {multi:.2f} s/epoch ({samples / multi:.0f} samples/s)")
    print(f"speed-up {single / multi:.2f}x")
    (ROOT / "benchmarks" / "results" / "ddp_scaling.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
