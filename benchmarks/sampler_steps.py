"""Sampler error against the number of steps, on problems with exact denoisers.

Usage: python benchmarks/sampler_steps.py [--steps 10 20 50 200] [--batch 256] [--frechet-batch 4096] [--threads 1]
       [--prior RUN_DIR [--prior-batch 8] [--prior-reference 400]]

Problems (all in float64, the same initial noise for every sampler):

* ``mixture``: an isotropic Gaussian mixture (4 components in R^(1x8), means ~ N(0, I),
  standard deviations 0.3-0.6), white noise at sigma_max = 80; the reference is DPM-Solver++(3M)
  with 2000 Karras steps (its distance to 2000 log-SNR steps is printed as the reference error).
* ``mixture-wide``: the same with overlapping components (means ~ N(0, 0.25 I), standard
  deviations 0.5-1.0) in R^(1x2).
* ``grf-prior``: a Gaussian-random-field prior (periodic 32x32, alpha=2.5, tau=5, mean 1,
  scale 0.5) with GRF noise (alpha=2, tau=3), whose probability-flow ODE is solved exactly
  (:meth:`GaussianPrior.flow`): no reference solver.

* ``--prior RUN_DIR``: a trained prior (``train.task: diffusion``) at its training grid with
  its own noise, in normalised units, log-SNR schedule only; the reference is DPM-Solver++(3M)
  with ``--prior-reference`` steps (no exact solution exists; the printed reference error
  is its distance to half as many steps).

The error is the relative L2 distance of the final samples to the exact (or reference)
ODE solution from the same noise: mean_i ||x_i - x*_i|| / mean_i ||x*_i - mean||, a pathwise
measure. For the two mixtures (low-dimensional, ``--frechet-batch`` samples) the script also
reports a distributional one, in the sense of the sample-quality scores of the DPM-Solver++
paper: the Frechet distance between Gaussian fits of the samples and of the exact ODE's samples,
||m - m*||^2 + tr(C + C* - 2 (C*^(1/2) C C*^(1/2))^(1/2)) (a squared distance, so a first-order
solver's falls as 1/N^2). For every problem, schedule and measure: the errors per sampler
and steps, and the number of Euler steps that matches the error of DPM-Solver++(2M)/(3M) and
UniPC at 20 steps (log-log interpolation of the Euler curve, extrapolated past the ends with
the first-order slope). Writes benchmarks/results/sampler_steps.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from oplearn.diffusion.gaussian import GaussianMixture, GaussianPrior
from oplearn.diffusion.noise import GRFNoise
from oplearn.diffusion.samplers import SAMPLERS, sample
from oplearn.diffusion.schedules import SCHEDULES

ROOT = Path(__file__).resolve().parents[1]


def mixture_problem(batch: int, dim: int, mean_scale: float, std_scale: float):
    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture(
        mean_scale * torch.randn(4, 1, dim, generator=g, dtype=torch.float64),
        std_scale * torch.tensor([0.6, 1.0, 0.8, 1.2]),
    )
    noise = 80.0 * torch.randn(batch, 1, dim, generator=g, dtype=torch.float64)
    reference = sample(mixture, noise, SCHEDULES["karras"](2000), "dpmpp3m")
    check = sample(mixture, noise, SCHEDULES["logsnr"](2000), "dpmpp3m")
    return mixture, noise, reference, _error(check, reference, 0.0)


def grf_problem(batch: int):
    field = GRFNoise(alpha=2.5, tau=5.0, periodic=True)
    noise_law = GRFNoise(alpha=2.0, tau=3.0, periodic=True)
    prior = GaussianPrior(field, noise_law, scale=0.5, mean=1.0)
    noise = 80.0 * noise_law.sample((batch, 1, 32, 32), torch.Generator().manual_seed(0), dtype=torch.float64)
    return prior, noise, prior.flow(noise, 80.0, 0.0), 0.0


def trained_problem(run_dir: str, batch: int, steps: int):
    from oplearn.diffusion.task import load_prior

    prior, meta = load_prior(run_dir)
    noise = 80.0 * meta["noise"].sample(
        (batch, meta["channels"], *meta["grid"].shape), torch.Generator().manual_seed(0)
    )

    @torch.no_grad()
    def denoise(x, sigma):
        return prior(x, sigma)

    reference = sample(denoise, noise, SCHEDULES["logsnr"](steps), "dpmpp3m")
    check = sample(denoise, noise, SCHEDULES["logsnr"](steps // 2), "dpmpp3m")
    return denoise, noise, reference, _error(check, reference, 0.0)


def _error(x: torch.Tensor, ref: torch.Tensor, center: float) -> float:
    return ((x - ref).flatten(1).norm(dim=1).mean() / (ref - center).flatten(1).norm(dim=1).mean()).item()


def frechet_distance(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two sample sets ``(n, ...)`` (module docstring)."""
    x, ref = x.flatten(1), ref.flatten(1)
    cov, cov_ref = torch.cov(x.T), torch.cov(ref.T)
    values, vectors = torch.linalg.eigh(cov_ref)
    root = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(root @ cov @ root).clamp_min(0).sqrt().sum()
    return ((x.mean(0) - ref.mean(0)).square().sum() + cov.trace() + cov_ref.trace() - 2 * cross).item()


def euler_steps_for(error: float, steps: list[int], euler: list[float], power: int = 1) -> float:
    """Euler steps giving ``error``: log-log interpolation, or extrapolation past the ends with
    Euler's slope ``-power`` (1 for a distance, 2 for a squared one)."""
    logs, loge = [math.log(s) for s in steps], [math.log(e) for e in euler]
    target = math.log(error)
    for (s0, e0), (s1, e1) in zip(zip(logs, loge), zip(logs[1:], loge[1:])):
        if e1 <= target <= e0:
            return math.exp(s0 + (target - e0) * (s1 - s0) / (e1 - e0))
    if target < loge[-1]:
        return math.exp(logs[-1] + (loge[-1] - target) / power)
    return math.exp(logs[0] - (target - loge[0]) / power)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 200])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--frechet-batch", type=int, default=4096, help="samples per mixture for the Frechet distance")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prior", default=None, help="run directory of a trained diffusion prior")
    parser.add_argument("--prior-batch", type=int, default=8)
    parser.add_argument("--prior-reference", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sampler_steps.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    problems = {
        "mixture": lambda: mixture_problem(args.batch, 8, 1.0, 0.5),
        "mixture-wide": lambda: mixture_problem(args.batch, 2, 0.5, 0.8),
        "grf-prior": lambda: grf_problem(args.batch // 4),
    }
    if args.prior:
        problems = {"trained-prior": lambda: trained_problem(args.prior, args.prior_batch, args.prior_reference)}
    results = {"steps": args.steps, "problems": {}, "machine": platform.processor() or platform.machine()}
    frechet = {
        "mixture": lambda: mixture_problem(args.frechet_batch, 8, 1.0, 0.5),
        "mixture-wide": lambda: mixture_problem(args.frechet_batch, 2, 0.5, 0.8),
    }
    for name, make in problems.items():
        t0 = time.perf_counter()
        denoiser, noise, reference, ref_error = make()
        center = 1.0 if name == "grf-prior" else 0.0
        entry = {"reference_error": ref_error, "schedules": {}}
        schedules = {"logsnr": SCHEDULES["logsnr"]} if name == "trained-prior" else SCHEDULES
        runs = [("relative error", noise, reference, lambda x, ref: _error(x, ref, center), 1)]  # noqa: B023 (called within this iteration)
        if name in frechet:
            _, fnoise, freference, _ = frechet[name]()
            runs.append(("frechet distance", fnoise, freference, frechet_distance, 2))
        for schedule, fn in schedules.items():
            entry["schedules"][schedule] = {
                "evaluations": {m: [SAMPLERS[m]().evaluations(fn(n)) for n in args.steps] for m in SAMPLERS}
            }
            for measure, start, ref, score, power in runs:
                errors = {m: [score(sample(denoiser, start, fn(n), m), ref) for n in args.steps] for m in SAMPLERS}
                summary = {}
                if 20 in args.steps:
                    i20 = args.steps.index(20)
                    for m in ("dpmpp2m", "dpmpp3m", "unipc"):
                        summary[f"euler_steps_matching_{m}_at_20"] = euler_steps_for(
                            errors[m][i20], args.steps, errors["euler"], power
                        )
                key = "errors" if measure == "relative error" else "frechet"
                entry["schedules"][schedule][key] = errors
                entry["schedules"][schedule].update(
                    {(k if key == "errors" else f"{k}_frechet"): v for k, v in summary.items()}
                )
                against = "a 3M reference" if name == "trained-prior" else "the exact ODE solution"
                print(f"\n{name}, {schedule} schedule ({measure} vs {against}; reference error {ref_error:.1e})")
                print("| sampler | " + " | ".join(f"{n} steps" for n in args.steps) + " |")
                print("|---|" + "---|" * len(args.steps))
                for m in SAMPLERS:
                    print(f"| {m} | " + " | ".join(f"{e:.2e}" for e in errors[m]) + " |")
                for k, value in summary.items():
                    print(f"{k}: {value:.0f}")
        entry["seconds"] = time.perf_counter() - t0
        results["problems"][name] = entry
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
