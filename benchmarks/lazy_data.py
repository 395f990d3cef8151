"""Peak memory of training with the data in memory against ``data.lazy: true``, as the file grows.

Usage: python benchmarks/lazy_data.py [--sizes 2048 8192 32768] [--resolution 64]

For each size a Poisson dataset (``f -> u`` at ``resolution^2``, float32, 2 fields per
sample) is generated in 2 shards and assembled into one file of HDF5 virtual datasets; one
epoch of a small FNO (all samples but 64 train, 64 validate, batch 256, 1 thread) is trained
on it in a fresh process with the data in memory and again read lazily. Reported: the
peak resident memory of that process (``ru_maxrss``, including the ~300 MiB of the torch
runtime) and the seconds of the epoch (normaliser pass, training, validation). Writes
benchmarks/results/lazy_data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = {"name": "fno", "modes": 8, "width": 8, "n_layers": 1, "projection_channels": 16}


def one(config_path: str, lazy: bool) -> dict:
    """Train the config once in this process; its peak resident memory and epoch seconds."""
    from oplearn.config import load_config
    from oplearn.training.run import train

    out = Path(config_path).with_name(f"run-{'lazy' if lazy else 'memory'}")
    train(load_config(config_path, [f"data.lazy={str(lazy).lower()}"]), out, progress=False)
    seconds = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["seconds"]
    shutil.rmtree(out)
    return {
        "lazy": lazy,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "epoch_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192, 16384], help="samples per file")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1] == "1")))
        return

    sys.path.insert(0, str(ROOT / "src"))
    from oplearn.data.generate import generate_parallel, make_pde

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
    }
    rows = []
    work = Path(tempfile.mkdtemp(prefix="oplearn-lazy-"))
    try:
        for n in args.sizes:
            data = generate_parallel(
                make_pde("poisson"), n, args.resolution, work / f"poisson{n}.h5", workers=2, seed=0, progress=False
            )
            file_mib = sum(p.stat().st_size for p in (work / f"poisson{n}.h5.shards").iterdir()) / 2**20
            config = {
                "seed": 0,
                "data": {"path": str(data), "n_val": 64, "batch_size": 256},
                "model": MODEL,
                "train": {"epochs": 1, "lr": 1e-3, "threads": 1},
            }
            config_path = work / f"config{n}.yaml"
            config_path.write_text(yaml.safe_dump(config))
            row = {"samples": n, "resolution": args.resolution, "file_mib": file_mib}
            for lazy in (False, True):
                proc = subprocess.run(
                    [sys.executable, __file__, "--one", str(config_path), str(int(lazy))],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                key = "lazy" if lazy else "memory"
                row[f"{key}_peak_rss_mib"], row[f"{key}_epoch_seconds"] = (
                    result["peak_rss_mib"],
                    result["epoch_seconds"],
                )
            print(json.dumps(row), flush=True)
            rows.append(row)
            shutil.rmtree(work / f"poisson{n}.h5.shards")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nPoisson {args.resolution}^2, FNO {MODEL['modes']} modes width {MODEL['width']}, 1 epoch, batch 256, 1 thread"
    )
    print("| samples | file MiB | peak RSS MiB, in memory | peak RSS MiB, lazy | epoch s, in memory | epoch s, lazy |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['samples']} | {r['file_mib']:.0f} | {r['memory_peak_rss_mib']:.0f} | {r['lazy_peak_rss_mib']:.0f} "
            f"| {r['memory_epoch_seconds']:.1f} | {r['lazy_epoch_seconds']:.1f} |"
        )
    out = ROOT / "benchmarks" / "results" / "lazy_data.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"model": MODEL, "rows": rows}, indent=2))
    os.replace(tmp, out)
    print(f"written {out}")


if __name__ == "__main__":
    main()
