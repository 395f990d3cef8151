"""Neighbour search and GNO forward+backward at 10^4 .. 10^6 points: time and peak memory,
oplearn against the NeuralOperator library's ``GNOBlock``.

Setting: ``n`` points uniform in the unit square, the radius giving about ``--neighbours``
neighbours per point (``r = sqrt(k / (pi n))``), every point both an input and a query point,
``--channels`` feature channels, and the same kernel MLP in both libraries
(``2 d -> 64 -> 64 -> channels``, GELU; linear kernel ``k(x, y) * f(x)``, mean over each
neighbourhood). One timed repetition after a warm-up at 1000 points:

* ``search``: the radius neighbour search alone;
* ``fwd+bwd``: search, integral, sum of squares of the output, backward to the kernel weights.

Each case runs in a fresh process under an address-space limit of ``--memory-gib`` (so a
library that asks for more fails cleanly instead of swapping the machine), and its peak
resident memory is read from ``getrusage``. oplearn processes the pairs in chunks of
``--max-pairs`` with activation checkpointing (:class:`oplearn.layers.integral.KernelIntegral`).
NeuralOperator 2.0 uses its native search (``torch.cdist`` of all pairs; open3d is for 3D
only) and its plain-torch segment reduction (no torch-scatter).

NeuralOperator is optional; install it in a separate environment so it cannot replace the
project's torch, and name its python with ``--neuralop-python`` (default
``.venv-bench/bin/python`` when it exists)::

    python -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0
    .venv-bench/bin/pip install neuraloperator==2.0.0
    python benchmarks/gno_scaling.py --preset cpu

Writes ``benchmarks/results/gno_scaling.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "cpu": {"sizes": [10_000, 100_000, 1_000_000], "threads": 1, "memory_gib": 8.0},
    "gpu": {"sizes": [10_000, 100_000, 1_000_000, 10_000_000], "threads": 4, "memory_gib": 64.0},
}


def points(n: int, neighbours: float, device: str):
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=g).to(device)
    f = torch.randn(n, 8, generator=g).to(device)
    return x, f, math.sqrt(neighbours / (math.pi * n))


def run_oplearn(n: int, args) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from oplearn.layers.integral import KernelIntegral
    from oplearn.layers.neighbors import radius_neighbors

    def case(n, timed):
        x, f, r = points(n, args.neighbours, args.device)
        f = f[:, : args.channels]
        torch.manual_seed(0)
        layer = KernelIntegral(args.channels, 2, r, kernel_width=64, max_pairs=args.max_pairs).to(args.device)
        layer.activation_checkpointing = True
        sync(args.device)
        t0 = time.perf_counter()
        nb = radius_neighbors(x, x, r)
        sync(args.device)
        t1 = time.perf_counter()
        if timed:
            del nb  # the timed fwd+bwd searches again
            t1b = time.perf_counter()
            nb = radius_neighbors(x, x, r)
        out = layer(x, f, x, nb)
        out.square().sum().backward()
        sync(args.device)
        t2 = time.perf_counter()
        return {"pairs": int(nb.row_splits[-1]), "search_s": t1 - t0, "fwd_bwd_s": t2 - (t1b if timed else t1)}

    case(1000, False)
    return case(n, True)


def run_neuralop(n: int, args) -> dict:
    import torch
    from neuralop.layers.gno_block import GNOBlock

    def case(n):
        x, f, r = points(n, args.neighbours, args.device)
        f = f[:, : args.channels]
        torch.manual_seed(0)
        block = GNOBlock(
            in_channels=args.channels,
            out_channels=args.channels,
            coord_dim=2,
            radius=r,
            transform_type="linear",
            reduction="mean",
            pos_embedding_type=None,
            channel_mlp_layers=[64, 64],
            use_torch_scatter_reduce=False,
            use_open3d_neighbor_search=False,
        ).to(args.device)
        sync(args.device)
        t0 = time.perf_counter()
        nb = block.neighbor_search(data=x, queries=x, radius=r)
        sync(args.device)
        t1 = time.perf_counter()
        pairs = int(nb["neighbors_row_splits"][-1])
        del nb
        t1b = time.perf_counter()
        out = block(y=x, x=x, f_y=f)
        out.square().sum().backward()
        sync(args.device)
        t2 = time.perf_counter()
        return {"pairs": pairs, "search_s": t1 - t0, "fwd_bwd_s": t2 - t1b}

    case(1000)
    return case(n)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def worker(args) -> None:
    """One case in this process; prints one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    try:
        result = (run_oplearn if args.worker == "oplearn" else run_neuralop)(args.n, args)
        result["status"] = "ok"
    except (RuntimeError, MemoryError) as err:  # out of memory under the limit
        asked = re.search(r"allocate (\d+) bytes", str(err))
        what = (
            f"out of memory: asked for {int(asked[1]) / 2**30:.1f} GiB at once"
            if asked
            else str(err).splitlines()[0][:160]
        )
        result = {"status": f"failed: {type(err).__name__}: {what}"}
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if args.device.startswith("cuda"):
        result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print("RESULT " + json.dumps(result), flush=True)


def launch(impl: str, n: int, python: str, args) -> dict:
    limit = int(args.memory_gib * 2**30)

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--n",
        str(n),
        "--threads",
        str(args.threads),
        "--neighbours",
        str(args.neighbours),
        "--channels",
        str(args.channels),
        "--max-pairs",
        str(args.max_pairs),
        "--device",
        args.device,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=args.timeout,
            preexec_fn=None if args.device.startswith("cuda") else cap,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"status": f"failed: over {args.timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:160]
        return {"status": f"failed (exit {proc.returncode}): {tail}", "wall_s": time.perf_counter() - t0}
    return json.loads(lines[-1][len("RESULT ") :])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", help="point counts (default: the preset's)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--memory-gib", type=float, help="address-space limit of each case (CPU)")
    parser.add_argument("--neighbours", type=float, default=20.0, help="mean neighbours per point")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--max-pairs", type=int, default=1 << 18, help="oplearn: pairs per chunk")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--neuralop-python", help="python of an environment with neuraloperator==2.0.0")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gno_scaling.json"))
    parser.add_argument("--worker", choices=["oplearn", "neuralop"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    args.threads = args.threads or preset["threads"]
    args.memory_gib = args.memory_gib or preset["memory_gib"]
    if args.device == "cpu" and args.preset == "gpu":
        args.device = "cuda"
    if args.worker:
        worker(args)
        return 0
    sizes = args.sizes or preset["sizes"]
    bench_python = args.neuralop_python or (
        str(ROOT / ".venv-bench/bin/python") if (ROOT / ".venv-bench/bin/python").exists() else None
    )
    implementations = {"oplearn": sys.executable}
    if bench_python:
        implementations["neuralop"] = bench_python
    rows = []
    print(
        f"{'library':<10} {'points':>9} {'pairs':>11} {'search s':>9} {'fwd+bwd s':>10} {'peak GiB':>9}  status",
        flush=True,
    )
    for n in sizes:
        for impl, python in implementations.items():
            row = {"library": impl, "points": n, **launch(impl, n, python, args)}
            rows.append(row)
            fmt = lambda key, spec: format(row[key], spec) if key in row else "-"  # noqa: B023 (called within this iteration)
            print(
                f"{impl:<10} {n:>9} {fmt('pairs', 'd'):>11} {fmt('search_s', '.2f'):>9} {fmt('fwd_bwd_s', '.2f'):>10} "
                f"{fmt('peak_gpu_gib' if args.device != 'cpu' else 'peak_rss_gib', '.2f'):>9}  {row['status']}",
                flush=True,
            )
    from mesh_data import write_result

    write_result(
        args.out,
        "gno_scaling",
        argv,
        {k: getattr(args, k) for k in ("threads", "memory_gib", "neighbours", "channels", "max_pairs", "device")},
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
