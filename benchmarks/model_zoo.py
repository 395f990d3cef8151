"""Model-zoo table at 64x64: parameters, forward and forward+backward time, peak memory.

Usage: python benchmarks/model_zoo.py [--batch 8] [--resolution 64] [--threads 2]

Each model runs in a fresh process (so peak resident memory is its own), built from its
default config through the same path as `oplearn train` (1 input field + 2 coordinate
channels, 1 output). Writes benchmarks/results/model_zoo.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, batch: int, resolution: int, threads: int) -> dict:
    import torch

    from oplearn.config import validate_config
    from oplearn.grids import Grid
    from oplearn.models import count_parameters
    from oplearn.training.tasks import build_operator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = validate_config({"data": {"path": "unused.h5"}, "model": {"name": name}})
    model = build_operator(config, 1, 1, Grid((resolution, resolution)))
    x = torch.randn(batch, 1, resolution, resolution)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def forward():
        with torch.no_grad():
            model(x)

    def train_step():
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    timings = {}
    for label, fn in (("forward_ms", forward), ("forward_backward_ms", train_step)):
        for _ in range(3):
            fn()
        runs = []
        for _ in range(7):
            t0 = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - t0) * 1000)
        timings[label] = statistics.median(runs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "model": name,
        "parameters": count_parameters(model),
        **timings,
        "peak_rss_mib": peak / 1024,
        "rss_growth_mib": (peak - rss0) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.batch, args.resolution, args.threads)))
        return

    from oplearn.config import MODEL_CONFIGS

    rows = []
    for name in (name for name, config in MODEL_CONFIGS.items() if config.kind == "grid"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                name,
                "--batch",
                str(args.batch),
                "--resolution",
                str(args.resolution),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"batch {args.batch}, {args.resolution}x{args.resolution}, {args.threads} threads, default configs")
    print("| model | parameters | forward ms | forward+backward ms | peak RSS MiB | RSS growth MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['parameters']:,} | {r['forward_ms']:.1f} | {r['forward_backward_ms']:.1f} "
            f"| {r['peak_rss_mib']:.0f} | {r['rss_growth_mib']:.0f} |"
        )
    out = ROOT / "benchmarks" / "results" / "model_zoo.json"
    out.write_text(
        json.dumps(
            {"batch": args.batch, "resolution": args.resolution, "threads": args.threads, "rows": rows}, indent=2
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
