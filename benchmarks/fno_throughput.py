"""Training throughput of oplearn's FNO against the NeuralOperator library's FNO.

Throughput is samples per second of one training step (forward, MSE loss, backward, AdamW
step) on random data, after warm-up, as the median over interleaved timed repeats: in each
repeat every model runs ``--steps`` steps in turn, so slow phases of a shared machine hit
all models alike. Models are built with the same modes, width, layers and channels:

* ``oplearn``: ``FNO(in_channels=3, out_channels=1, modes=m, width=w, n_layers=4)`` with its
  defaults otherwise (lifting one 1x1 convolution, projection MLP with 128 channels, GELU,
  no padding). The two coordinate channels are appended to the one input channel inside
  the timed step, as oplearn's operator wrapper does.
* ``neuralop``: ``neuralop.models.FNO(n_modes=(2m, 2m - 1), in_channels=1, out_channels=1,
  hidden_channels=w, n_layers=4)`` with its defaults otherwise (grid positional embedding,
  lifting and projection MLPs with 2w channels, a channel MLP and soft-gating skip in every
  block, linear FNO skip). ``n_modes=(2m, 2m - 1)`` keeps exactly oplearn's frequencies
  ``-m..m-1`` x ``0..m-1``, since that library counts both signs and keeps ``n // 2 + 1`` on
  the last axis.
* ``neuralop-closest``: the same with ``use_channel_mlp=False``, ``lifting_channel_ratio=0``
  (one linear lifting layer) and ``projection_channel_ratio=128 / w`` (128 projection
  channels): the architecture nearest to oplearn's.

Efficiency: the FLOPs of one step are counted twice, without FFTs (torch's FLOP counter:
matrix products and convolutions) and with them (:data:`FFT_OPS` adds ``5 N log2 N`` real
flops per complex FFT of ``N`` points and ``2.5 N log2 N`` per real-input ``rfft`` or
real-output ``irfft``, forward and backward), and divided by the measured step time; both
are compared with the cores' FP32 peak (:func:`peak_gflops`). Elementwise work is never
counted, so both rates are lower bounds.

The NeuralOperator library is optional; without it only oplearn is timed. Install it in a
separate environment so it cannot replace the project's torch, e.g.::

    python -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.13.0
    .venv-bench/bin/pip install neuraloperator==2.0.0
    PYTHONPATH=src .venv-bench/bin/python benchmarks/fno_throughput.py

Writes ``benchmarks/results/fno_throughput.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oplearn.grids import Grid  # noqa: E402
from oplearn.models import FNO, count_parameters  # noqa: E402

CONFIGS = {
    "A": {"n_dim": 2, "modes": 8, "width": 24, "n_layers": 4, "batch": 64, "resolution": 16},
    "B": {"n_dim": 2, "modes": 12, "width": 32, "n_layers": 4, "batch": 16, "resolution": 64},
    "C": {"n_dim": 2, "modes": 12, "width": 32, "n_layers": 4, "batch": 4, "resolution": 128},
}
TARGET_RATIO = 1.3


class WithCoordinates(nn.Module):
    """Append the unit-box node coordinates to the input channels, then apply ``net``."""

    def __init__(self, net: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("coords", Grid(shape).coordinates())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.coords.expand(x.shape[0], *self.coords.shape)], dim=1))


def build_models(cfg: dict) -> dict[str, tuple[nn.Module, dict]]:
    """Name -> (model, the constructor arguments passed) for one configuration."""
    m, w, layers, d = cfg["modes"], cfg["width"], cfg["n_layers"], cfg["n_dim"]
    ours_args = {"in_channels": 1 + d, "out_channels": 1, "modes": m, "width": w, "n_layers": layers, "n_dim": d}
    models = {"oplearn": (WithCoordinates(FNO(**ours_args), (cfg["resolution"],) * d), ours_args)}
    try:
        from neuralop.models import FNO as TheirFNO
    except ImportError:
        return models
    n_modes = (2 * m,) * (d - 1) + (2 * m - 1,)
    base = {"n_modes": n_modes, "in_channels": 1, "out_channels": 1, "hidden_channels": w, "n_layers": layers}
    closest = {**base, "use_channel_mlp": False, "lifting_channel_ratio": 0, "projection_channel_ratio": 128 / w}
    for name, args in (("neuralop", base), ("neuralop-closest", closest)):
        models[name] = (TheirFNO(**args), {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()})
    return models


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def _fft_flops(shape, dims, complex_input: bool) -> int:
    """``5 N log2 N`` real flops per complex FFT of ``N = prod(shape[d] for d in dims)``
    points over the batch of the other axes; half that for a real-input (or real-output)
    one. A multi-axis transform costs the same as one of length ``N`` (``sum_d N / N_d x
    5 N_d log2 N_d``)."""
    n = math.prod(shape[d] for d in dims)
    batch = math.prod(shape) // max(n, 1)
    return round(batch * (5.0 if complex_input else 2.5) * n * math.log2(n)) if n > 1 else 0


def _r2c_flops(x_shape, dim, normalization, onesided, out_shape=None, **kwargs) -> int:
    return _fft_flops(x_shape, dim, complex_input=False)


def _c2r_flops(x_shape, dim, normalization, last_dim_size, out_shape=None, **kwargs) -> int:
    return _fft_flops(out_shape, dim, complex_input=False)  # N counts the real output points


def _c2c_flops(x_shape, dim, normalization, forward, out_shape=None, **kwargs) -> int:
    return _fft_flops(x_shape, dim, complex_input=True)


FFT_OPS = {
    torch.ops.aten._fft_r2c: _r2c_flops,
    torch.ops.aten._fft_c2r: _c2r_flops,
    torch.ops.aten._fft_c2c: _c2c_flops,
}


def step_flops(step) -> tuple[int, int]:
    """Floating-point operations of one training step (forward and backward): those counted
    by torch's FLOP counter (matrix products and convolutions) and those of its FFTs, which
    that counter omits and :data:`FFT_OPS` adds by the usual convention: ``5 N log2 N``
    per complex FFT of ``N`` points, ``2.5 N log2 N`` per real one (``rfft``/``irfft``).
    Elementwise work is not counted, so rates from these are lower bounds.

    Returns ``(matmul_and_conv_flops, fft_flops)``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=FFT_OPS) as counter:
        step()
    counts = counter.get_flop_counts()["Global"]
    fft = sum(counts.get(op, 0) for op in FFT_OPS)
    return counter.get_total_flops() - fft, fft


def peak_gflops(threads: int) -> float:
    """FP32 peak of ``threads`` cores with two AVX2 FMA units: 2 x 8 lanes x 2 flops per cycle."""
    mhz = [
        float(line.split(":")[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("cpu MHz")
    ]
    return threads * 32 * (max(mhz) if mhz else 2500.0) / 1000


def measure(cfg: dict, steps: int, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    shape = (cfg["batch"], 1) + (cfg["resolution"],) * cfg["n_dim"]
    x, y = torch.randn(shape), torch.randn(shape)
    models = build_models(cfg)
    stepper = {name: make_step(model, x, y) for name, (model, _) in models.items()}
    for step in stepper.values():
        for _ in range(warmup):
            step()
    flops = {name: step_flops(step) for name, step in stepper.items()}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, step in stepper.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            rates[name].append(steps * cfg["batch"] / (time.perf_counter() - t0))
    out = {}
    for name, (model, args) in models.items():
        steps_per_s = statistics.median(rates[name]) / cfg["batch"]
        dense, fft = flops[name]
        out[name] = {
            "samples_per_s": statistics.median(rates[name]),
            "repeats": rates[name],
            "parameters": count_parameters(model),
            "constructor": args,
            "counted_flops_per_step": dense,
            "fft_flops_per_step": fft,
            "achieved_gflops": dense * steps_per_s / 1e9,
            "achieved_gflops_with_fft": (dense + fft) * steps_per_s / 1e9,
        }
    for name in list(out):
        if name != "oplearn":
            out[f"ratio_oplearn_over_{name}"] = out["oplearn"]["samples_per_s"] / out[name]["samples_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per model (median reported)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per model first")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fno_throughput.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    try:
        neuralop_version = importlib.metadata.version("neuraloperator")
    except importlib.metadata.PackageNotFoundError:
        neuralop_version = None
        print("neuraloperator is not installed: timing oplearn only")
    results = {
        "description": "training samples/s (forward + MSE + backward + AdamW step), median of interleaved repeats",
        "torch": torch.__version__,
        "neuraloperator": neuralop_version,
        "threads": args.threads,
        "cpu": cpu_name(),
        "steps": args.steps,
        "repeats": args.repeats,
        "target_ratio": TARGET_RATIO,
        "peak_gflops_fp32": peak_gflops(args.threads),
        "configs": {},
    }
    for key in args.configs:
        cfg = CONFIGS[key]
        results["configs"][key] = {"config": cfg, "results": measure(cfg, args.steps, args.repeats, args.warmup)}

    print(f"\ntorch {torch.__version__}, {args.threads} threads, neuraloperator {neuralop_version}")
    peak = results["peak_gflops_fp32"]
    print(f"FP32 peak of {args.threads} cores (2 AVX2 FMA units): {peak:.0f} GFLOP/s")
    print(
        "| config | model | params | samples/s | oplearn / model | GFLOP/s without FFTs | of peak "
        "| GFLOP/s with FFTs | of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, entry in results["configs"].items():
        r = entry["results"]
        for name in (n for n in r if not n.startswith("ratio")):
            ratio = r.get(f"ratio_oplearn_over_{name}", 1.0)
            dense, total = r[name]["achieved_gflops"], r[name]["achieved_gflops_with_fft"]
            print(
                f"| {key} | {name} | {r[name]['parameters']:,} | {r[name]['samples_per_s']:.0f} | {ratio:.2f} "
                f"| {dense:.1f} | {dense / peak:.1%} | {total:.1f} | {total / peak:.1%} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
