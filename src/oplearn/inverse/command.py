"""``oplearn inverse``: posterior sampling with a trained diffusion prior from sparse observations.

Writes into ``--out`` (default ``RUN_DIR/inverse``):

- ``posterior.npz``: ``mean``, ``std``, ``lower``/``upper`` (the central 90% band), ``samples``
  ``(M, C, *spatial)``, ``names``, the observation (``index``, ``y``, ``noise``) and ``truth``
  when known; physical units
- ``metrics.json``: per channel: relative L2 of the posterior mean, 90%-band calibration, mean
  posterior std (and the coefficient error rate of a two-valued coefficient), when the truth is
  known; always the settings and the wall time
- ``posterior.png``: per channel: truth, observations, posterior mean, posterior std, absolute error
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from oplearn.diffusion.samplers import SAMPLERS
from oplearn.errors import OplearnError
from oplearn.inverse.daps import CONDITIONALS, LANGEVIN_STEPS, ODE_STEPS
from oplearn.inverse.guidance import DEFAULT_SCALE, SCALES

if TYPE_CHECKING:
    from oplearn.inverse.observations import Observation
    from oplearn.inverse.posterior import Posterior
import argparse

#: Default sampler steps of guided sampling per guidance scale, and the annealing levels of DAPS
#: (the paper's 200). With covariance guidance 10 DPM-Solver++(2M) steps reach the Bayes-optimal
#: error on the linear-Gaussian problems, whose accuracy the GMRES solves set, not the steps
#: (BENCHMARKS.md); the normalized and likelihood scales take 20.
DEFAULT_STEPS = {"covariance": 10, "normalized": 20, "likelihood": 20, "daps": 200}
#: Default Krylov directions per step of the normalized and likelihood scales (covariance guidance:
#: :data:`oplearn.inverse.guidance.DEFAULT_KRYLOV`).
DEFAULT_KRYLOV = 4


def add_command(sub: argparse._SubParsersAction) -> None:
    from oplearn.arguments import dir_argument

    p = sub.add_parser(
        "inverse", help="posterior samples of fields from sparse observations, with a trained diffusion prior"
    )
    p.add_argument("run_dir", help="a diffusion-prior run (oplearn train with train.task=diffusion)")
    p.add_argument(
        "--observe", action="append", required=True, metavar="FIELD", help="observed channel (repeat for several)"
    )
    p.add_argument("--points", type=int, default=500, help="observed nodes (random, seeded)")
    p.add_argument(
        "--noise", type=float, default=0.0, help="standard deviation of the observation noise (physical units)"
    )
    p.add_argument("--data", metavar="FILE.h5", help="take the truth from this dataset and observe it")
    p.add_argument("--index", type=int, default=0, help="sample of --data used as the truth")
    p.add_argument(
        "--observations",
        metavar="FILE.npz",
        help="observed values instead of --data: arrays 'index' (flat indices into the (C, *spatial) field) and 'y'",
    )
    p.add_argument("--method", choices=("dps", "daps"), default="dps")
    p.add_argument("--sampler", choices=sorted(SAMPLERS), default="dpmpp2m")
    p.add_argument(
        "--steps",
        type=int,
        help="sampler steps (default 10 with covariance guidance, 20 with the normalized and likelihood "
        "scales; DAPS: annealing levels, default 200)",
    )
    p.add_argument(
        "--churn",
        type=float,
        default=0.0,
        help="DPS with --sampler euler or heun: EDM stochastic churn S_churn "
        "(re-noising before each step; e.g. 0.4 x --steps)",
    )
    p.add_argument("--samples", type=int, default=16, help="posterior samples M")
    p.add_argument("--batch-size", type=int, help="samples drawn at once (default: all)")
    p.add_argument(
        "--weight",
        type=float,
        help="normalized and likelihood scales: guidance weight w (default 1 for a prior "
        "with white noise, 0.3 with GRF noise)",
    )
    p.add_argument(
        "--scale",
        choices=SCALES,
        default=DEFAULT_SCALE,
        help="guidance step (default: covariance, the Tweedie-covariance posterior denoiser solved by GMRES; "
        "on a trained joint prior of a two-valued coefficient and its solution (Darcy), normalized with "
        "--krylov 4 recovers the unobserved coefficient about 1.8x better: BENCHMARKS.md)",
    )
    p.add_argument("--pde-weight", type=float, default=0.0, help="weight of the PDE-residual guidance term")
    p.add_argument(
        "--krylov",
        type=int,
        help="DPS: most Krylov directions per step: GMRES iterations of covariance "
        "guidance (default 16, one network pass each) or Lanczos directions of the normalized and likelihood "
        "scales (default 4, a forward pass and a vector-Jacobian product each)",
    )
    p.add_argument("--tau", type=float, help="DAPS likelihood width (default: --noise)")
    p.add_argument(
        "--langevin-steps", type=int, default=LANGEVIN_STEPS, help="DAPS Langevin steps per level (default 100)"
    )
    p.add_argument("--ode-steps", type=int, default=ODE_STEPS, help="DAPS ODE steps per level (default 5)")
    p.add_argument(
        "--conditional",
        choices=CONDITIONALS,
        default="langevin",
        help="DAPS: how each level draws x0 from its decoupled conditional: Langevin steps (the paper, "
        "default) or an exact Gaussian draw (exact when the observed fields are affine in the prior's "
        "space; linearised otherwise)",
    )
    p.add_argument(
        "--forward-run",
        metavar="RUN_DIR",
        help="DDIS: the prior models the coefficient only; this trained "
        "operator (oplearn train) supplies the solution inside the guidance",
    )
    p.add_argument(
        "--forward-solver",
        action="store_true",
        help="DDIS with the PDE's own solver (differentiated by the adjoint method) in place of a trained "
        "operator: exact discrete physics inside the guidance (darcy; a two-valued coefficient reaches the "
        "solver through a smooth projection onto its two values); the best setting for recovering Darcy's "
        "coefficient from u (BENCHMARKS.md)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=dir_argument(), help="output directory (default RUN_DIR/inverse)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_inverse)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _save_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def run_inverse(args: argparse.Namespace) -> None:
    from oplearn.data.files import load_fields
    from oplearn.diffusion.schedules import karras_sigmas
    from oplearn.inverse.daps import annealing_levels
    from oplearn.inverse.guidance import DEFAULT_KRYLOV as KRYLOV_PER_SCALE
    from oplearn.inverse.guidance import guidance_weight, two_valued
    from oplearn.inverse.observations import Observation, PointObservation
    from oplearn.inverse.posterior import posterior_metrics, sample_posterior, summarize
    from oplearn.inverse.setup import load_setup
    from oplearn.seeding import generator

    if args.krylov is not None and args.method != "dps":
        raise OplearnError("--krylov applies to DPS guidance; drop it with --method daps")
    steps = args.steps if args.steps is not None else DEFAULT_STEPS[args.scale if args.method == "dps" else "daps"]
    if args.pde_weight and args.scale == "covariance":
        raise OplearnError(
            "--pde-weight needs --scale normalized or likelihood (covariance guidance takes no PDE term)"
        )
    krylov = args.krylov if args.krylov is not None else (None if args.scale == "covariance" else DEFAULT_KRYLOV)
    if args.samples < 2:
        raise OplearnError(f"--samples must be at least 2 for a mean and a standard deviation, got {args.samples}")
    if (args.data is None) == (args.observations is None):
        raise OplearnError("give exactly one of --data FILE.h5 (observe a known truth) or --observations FILE.npz")
    setup = load_setup(args.run_dir, args.forward_run, device=args.device, forward_solver=args.forward_solver)
    shape = (len(setup.names), *setup.grid.shape)
    unknown = [name for name in args.observe if name not in setup.names]
    if unknown:
        raise OplearnError(f"--observe {', '.join(unknown)}: the fields are {', '.join(setup.names)}")
    channels = [setup.names.index(name) for name in args.observe]
    if args.pde_weight and (
        setup.pde is None or len(setup.names) != len(setup.pde.input_names) + len(setup.pde.output_names)
    ):
        raise OplearnError(
            "--pde-weight needs a prior whose fields are the PDE's inputs and outputs (a joint prior, or DDIS)"
        )

    truth = None
    if args.data is not None:
        data = load_fields(args.data)
        if data.grid.shape != setup.grid.shape:
            raise OplearnError(f"{args.data}: grid {data.grid.shape} differs from the prior's {setup.grid.shape}")
        if not 0 <= args.index < len(data):
            raise OplearnError(f"--index {args.index} is outside the {len(data)} samples of {args.data}")
        truth = torch.cat([data.inputs[args.index], data.outputs[args.index]]).double()
        if truth.shape[0] != len(setup.names):
            raise OplearnError(
                f"{args.data} holds {truth.shape[0]} channels; the prior's fields are {', '.join(setup.names)}"
            )
        obs = PointObservation(
            shape, args.points, channels=channels, noise=args.noise, generator=generator(args.seed, 0)
        )
        y = obs.observe(truth[None], generator(args.seed, 1))[0]
    else:
        try:
            given = np.load(args.observations)
            obs = Observation(torch.from_numpy(given["index"]), shape, args.noise)
            y = torch.from_numpy(given["y"]).double()
        except (OSError, KeyError, ValueError) as err:
            raise OplearnError(f"{args.observations}: cannot read arrays 'index' and 'y': {err}") from None
        if y.shape != (len(obs),):
            raise OplearnError(
                f"{args.observations}: 'y' must hold one value per index ({len(obs)}), got shape {tuple(y.shape)}"
            )

    sigmas = (
        karras_sigmas(steps, setup.sigma_min, setup.sigma_max)
        if args.method == "dps"
        else annealing_levels(steps, setup.sigma_max)
    )
    t0 = time.perf_counter()
    samples = sample_posterior(
        setup.denoise,
        obs,
        y,
        setup.prior_shape,
        args.samples,
        sigmas,
        method=args.method,
        sampler=args.sampler,
        churn=args.churn,
        fields=setup.fields,
        noise=setup.noise,
        batch_size=args.batch_size,
        guidance={
            "weight": args.weight,
            "scale": args.scale,
            "pde_weight": args.pde_weight,
            "pde": setup.pde,
            "grid": setup.grid,
            "krylov": krylov,
        },
        daps_options={
            "tau": args.tau,
            "langevin_steps": args.langevin_steps,
            "ode_steps": args.ode_steps,
            "conditional": args.conditional,
        },
        generator=generator(args.seed, 2, device=args.device),
        device=args.device,
        progress=not args.no_progress,
    )
    seconds = time.perf_counter() - t0
    post = summarize(samples)

    out = Path(args.out or Path(args.run_dir) / "inverse")
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "mean": post.mean.numpy(),
        "std": post.std.numpy(),
        "lower": post.lower.numpy(),
        "upper": post.upper.numpy(),
        "samples": samples.float().numpy(),
        "names": np.array(setup.names),
        "index": obs.index.numpy(),
        "y": y.numpy(),
        "noise": np.array(obs.noise),
    }
    if truth is not None:
        arrays["truth"] = truth.numpy()
    _save_npz(out / "posterior.npz", **arrays)
    report = {
        "run_dir": str(args.run_dir),
        "method": args.method,
        "sampler": args.sampler,
        "steps": steps,
        "churn": args.churn,
        "scale": args.scale if args.method == "dps" else None,
        "conditional": args.conditional if args.method == "daps" else None,
        "krylov": (krylov or KRYLOV_PER_SCALE[args.scale]) if args.method == "dps" else None,
        "weight": guidance_weight(args.weight, setup.noise)
        if args.method == "dps" and args.scale != "covariance"
        else None,
        "samples": args.samples,
        "observed": args.observe,
        "points": len(obs),
        "noise": obs.noise,
        "seconds": seconds,
        "forward_run": args.forward_run,
        "forward_solver": args.forward_solver,
    }
    if truth is not None:
        report["metrics"] = posterior_metrics(post, truth, setup.names, two_valued(setup.pde))
    _save_json(out / "metrics.json", report)
    figure = plot_posterior(post, obs, y, setup.names, truth, out / "posterior.png")
    print(
        f"{args.samples} posterior samples in {seconds:.1f} s; wrote {out / 'posterior.npz'}, {out / 'metrics.json'}, {figure}"
    )
    for name, row in report.get("metrics", {}).items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()))


def plot_posterior(
    post: Posterior,
    obs: Observation,
    y: torch.Tensor,
    names: Sequence[str],
    truth: torch.Tensor | None,
    path: Path,
) -> Path:
    """One row per channel of 2D fields: truth, observations, posterior mean, std and absolute error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from oplearn.report import save_figure

    mask = obs.mask()
    scattered = obs.adjoint(y[None].double())[0]
    cols = 5 if truth is not None else 3
    fig, axes = plt.subplots(len(names), cols, figsize=(3.2 * cols, 3.0 * len(names)), squeeze=False)
    for c, name in enumerate(names):
        ref = truth[c] if truth is not None else post.mean[c]
        vmin, vmax = float(ref.min()), float(ref.max())
        panels = []
        if truth is not None:
            panels.append((truth[c], f"{name}: truth", "viridis", vmin, vmax))
        panels += [
            (None, f"{name}: {int(mask[c].sum())} observations", "viridis", vmin, vmax),
            (post.mean[c], f"{name}: posterior mean", "viridis", vmin, vmax),
            (post.std[c], f"{name}: posterior std", "magma", None, None),
        ]
        if truth is not None:
            panels.append(((post.mean[c] - truth[c]).abs(), f"{name}: |mean - truth|", "magma", None, None))
        for ax, (field, title, cmap, lo, hi) in zip(axes[c], panels[:cols]):
            if field is None:
                rows, cols_ = mask[c].nonzero(as_tuple=True)
                ax.set_facecolor("0.9")
                im = ax.scatter(
                    cols_.numpy(), rows.numpy(), c=scattered[c][mask[c]].numpy(), s=6, cmap=cmap, vmin=lo, vmax=hi
                )
                ax.set_xlim(-0.5, mask.shape[2] - 0.5)
                ax.set_ylim(mask.shape[1] - 0.5, -0.5)
                ax.set_aspect("equal")
            else:
                im = ax.imshow(field.numpy(), cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    return save_figure(fig, path, dpi=100)
