"""``oplearn sample RUN_DIR``: draw fields from a trained diffusion prior, write them and a PNG."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import h5py
import torch

from oplearn.arguments import file_argument, positive_int
from oplearn.diffusion.samplers import SAMPLERS
from oplearn.diffusion.schedules import SCHEDULES


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained diffusion prior (train.task=diffusion)")
    p.add_argument("run_dir", help="run directory of the prior")
    p.add_argument("--n", type=positive_int, default=8, help="number of samples")
    p.add_argument("--steps", type=positive_int, default=20, help="sampler steps")
    p.add_argument(
        "--sampler", choices=sorted(SAMPLERS), default="dpmpp2m", help="sampler (oplearn.diffusion.samplers)"
    )
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="karras", help="noise-level schedule")
    p.add_argument(
        "--resolution", type=positive_int, default=None, help="grid points per axis (default: the training grid)"
    )
    p.add_argument("--churn", type=float, default=0.0, help="EDM stochastic churn (euler and heun)")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting noise (and of the churn)")
    p.add_argument(
        "--out",
        default=None,
        type=file_argument(),
        metavar="FILE.h5",
        help="HDF5 file (default RUN_DIR/samples/samples.h5; a PNG is written beside it)",
    )
    p.set_defaults(func=_sample_command)


def write_samples(path: Path, samples: torch.Tensor, attrs: dict) -> None:
    """Samples ``(n, C, *spatial)`` as dataset ``samples`` of an HDF5 file, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("samples", data=samples.numpy())
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value)
    os.replace(tmp, path)


def plot_samples(path: Path, samples: torch.Tensor, names: list[str], columns: int = 4) -> None:
    """The first ``columns`` 2D samples, one row per channel (1D fields: one curve per sample)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oplearn.report import save_figure

    n = min(columns, len(samples))
    channels = samples.shape[1]
    fig, axes = plt.subplots(channels, n, figsize=(3 * n, 2.8 * channels), squeeze=False)
    for c in range(channels):
        for i in range(n):
            ax = axes[c][i]
            if samples.ndim == 4:
                im = ax.imshow(samples[i, c].T, origin="lower", cmap="viridis")
                fig.colorbar(im, ax=ax, fraction=0.046)
                ax.set_xticks([]), ax.set_yticks([])
            else:
                ax.plot(samples[i, c].reshape(-1))
            ax.set_title(f"{names[c]} #{i}", fontsize=9)
    save_figure(fig, path, dpi=100)


def _sample_command(args: argparse.Namespace) -> None:
    from oplearn.diffusion.task import load_prior, sample_prior

    prior, meta = load_prior(args.run_dir)
    resolution = None if args.resolution is None else (args.resolution,) * meta["grid"].ndim
    samples = sample_prior(
        prior, meta, args.n, args.steps, args.sampler, args.schedule, resolution, args.seed, args.churn, progress=True
    )
    out = Path(args.out) if args.out else Path(args.run_dir) / "samples" / "samples.h5"
    attrs = {
        "run_dir": str(args.run_dir),
        "sampler": args.sampler,
        "steps": args.steps,
        "schedule": args.schedule,
        "churn": args.churn,
        "seed": args.seed,
        "channel_names": meta["channel_names"],
        "resolution": list(samples.shape[2:]),
    }
    write_samples(out, samples, attrs)
    png = out.with_suffix(".png")
    plot_samples(png, samples, meta["channel_names"])
    print(f"wrote {len(samples)} samples {tuple(samples.shape[1:])} to {out} and {png}")
