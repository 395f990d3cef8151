"""Posterior samplers against the exact posterior of linear-Gaussian Poisson problems (the Bayes bound).

Usage: python benchmarks/inverse_linear_gaussian.py --preset cpu
       [--resolutions 32 64] [--points 31 123 500] [--directions inverse forward] [--cases 2]
       [--samples 16] [--methods NAME ...] [--steps 10] [--krylov 16] [--threads 1] [--out FILE]

The prior is the joint Gaussian of the Poisson source f (the GRF of ``Poisson()``) and u = L f
(:class:`oplearn.inverse.linear_gaussian.LinearGaussianPoisson`) with the exact denoiser of
a diffusion with GRF forward noise (alpha 2, tau 3: the default of ``train.task: diffusion``),
so the posterior is known in closed form. ``points`` random nodes of one field are observed
with noise 1% of its prior scale: ``inverse`` observes u and recovers f, ``forward`` observes f
and recovers u. Every method draws ``samples`` posterior samples per case; on the recovered
field it reports

* the relative L2 error of the sampled posterior mean against the truth, and the Bayes-optimal
  error (that of the exact posterior mean) and their ratio;
* the gap ``||sampled mean - exact mean||`` in units of the Monte Carlo error of a mean of
  ``samples`` exact draws, ``sqrt(trace(Sigma) / samples)``: about 1 for an exact sampler;
* the calibration of the 90% band (fraction of the truth inside the samples' 5-95% band);
* the wall time per case (one thread, all methods in the same run).

Methods: ``exact`` (exact posterior draws by Matheron's rule: what an ideal sampler scores),
``dps-krylov`` (the earlier default of ``oplearn inverse``: normalized DPS guidance, weight 0.3,
Krylov <= 4, DPM-Solver++(2M) 20 steps), ``covariance`` (the default: covariance guidance,
GMRES <= 16 to a relative residual of 1e-2, 2M 10 steps, the start centred on the guided
posterior mean), ``daps`` (DAPS-1K as in the paper: 200 levels x 5 ODE steps, 100 Langevin
steps), ``daps-gaussian`` (the same with line 4's conditional N(x0_hat, sigma^2 N) x likelihood
drawn exactly), ``daps-exact`` (DAPS's annealing with the exact decoupled conditional
p(x0 | x_sigma, y): Tweedie's mean and covariance) and ``ddis`` (a prior on f alone and the exact
solution operator L as the forward operator, covariance guidance).

Besides the ratio to the Bayes-optimal error (that of the exact posterior mean), every row
reports the ratio to the expected error of a mean of ``samples`` exact draws,
``sqrt(||mean - truth||^2 + trace(Sigma) / samples) / ||truth||``: a sampled posterior mean
carries that Monte Carlo excess even for an exact sampler. Writes
benchmarks/results/inverse_linear_gaussian.json.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"cpu": {"resolutions": [32, 64], "points": [31, 123, 500], "cases": 2, "samples": 16}}
METHODS = ("exact", "dps-krylov", "covariance", "daps", "daps-gaussian", "daps-exact", "ddis")
LABELS = {
    "exact": "exact posterior draws (reference)",
    "dps-krylov": "DPS, Krylov guidance <= 4, 2M 20 steps (earlier default)",
    "covariance": "covariance guidance, GMRES <= {krylov}, 2M {steps} steps, centred start (default)",
    "daps": "DAPS-1K (200 levels x 5 ODE + 100 Langevin steps)",
    "daps-gaussian": "DAPS-1K, its decoupled conditional N(x0_hat, sigma^2 N) x likelihood drawn exactly",
    "daps-exact": "DAPS-1K annealing with the exact decoupled conditional p(x0 | x_sigma, y)",
    "ddis": "DDIS (prior on f + forward operator L), covariance guidance, GMRES <= {krylov}, 2M {steps} steps",
}
#: Observation noise as a fraction of the observed field's prior scale.
NOISE = 0.01


class _Solve(torch.nn.Module):
    """The exact forward operator f -> u = L f on ``(batch, 1, n, n)`` fields."""

    def __init__(self, operator: torch.Tensor):
        super().__init__()
        self.operator = operator

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return (f.flatten(1) @ self.operator.T.to(f)).reshape(f.shape)


def _decoupled(lg, noise):
    """DDIS on the linear-Gaussian problem: the exact denoiser of f alone (standardised) and the fields [f, L f]."""
    from oplearn.inverse.guidance import DecoupledFields
    from oplearn.inverse.linear_gaussian import GaussianDenoiser

    n = lg.grid.shape[0]
    values, vectors = torch.linalg.eigh(lg.source_covariance)
    unit = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    denoiser = GaussianDenoiser(
        noise_covariance=noise.covariance(unit).reshape(n * n, n * n),
        factor=vectors * values.clamp_min(0).sqrt() / lg.scale[0],
    )
    scale = float(lg.scale[0])
    return denoiser, DecoupledFields(_Solve(lg.solution_operator), decode=lambda z: z * scale)


def run_method(name, lg, ddis, obs, y, samples, seed, steps=None, krylov=None):
    """``samples`` posterior draws of (f, u) by method ``name``, and the denoiser passes of one trajectory
    (forward, backward: a vector-Jacobian product through the denoiser)."""
    from oplearn.diffusion.samplers import sample
    from oplearn.diffusion.schedules import karras_sigmas
    from oplearn.inverse.command import DEFAULT_STEPS
    from oplearn.inverse.daps import LEVELS, ODE_STEPS, annealing_levels
    from oplearn.inverse.guidance import GuidedDenoiser
    from oplearn.inverse.posterior import sample_posterior

    generator = torch.Generator().manual_seed(seed)
    if name == "exact":
        return lg.posterior_samples(obs, y, samples, generator), (0, 0)
    if name.startswith("daps"):
        conditional = {"daps": "langevin", "daps-gaussian": "gaussian"}.get(name) or lg.decoupled_conditional(obs, y)
        x = sample_posterior(
            lg.denoiser,
            obs,
            y,
            lg.shape,
            samples,
            annealing_levels(LEVELS),
            method="daps",
            fields=lg.fields,
            noise=lg.noise,
            daps_options={"conditional": conditional},
            dtype=torch.float64,
            generator=generator,
        )
        return x, (LEVELS * ODE_STEPS, 0)
    denoise, fields, noise, shape = (
        (*ddis, (1, *lg.shape[1:])) if name == "ddis" else (lg.denoiser, lg.fields, lg.noise, lg.shape)
    )
    guidance = {"scale": "normalized", "krylov": 4} if name == "dps-krylov" else {"scale": "covariance"}
    if name != "dps-krylov" and krylov is not None:
        guidance["krylov"] = krylov
    sigmas = karras_sigmas(20 if name == "dps-krylov" else steps or DEFAULT_STEPS["covariance"])
    guided = GuidedDenoiser(denoise, obs, y, fields=fields, noise=noise, schedule=sigmas, **guidance)
    start = guided.start(noise.sample((samples, *shape), generator, dtype=torch.float64) * sigmas[0], sigmas[0])
    x = fields(sample(guided, start, sigmas, method="dpmpp2m"))
    return x, (guided.forward_passes, guided.backward_passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--resolutions", type=int, nargs="+")
    parser.add_argument("--points", type=int, nargs="+")
    parser.add_argument("--directions", nargs="+", choices=("inverse", "forward"), default=["inverse", "forward"])
    parser.add_argument("--cases", type=int)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--steps", type=int, help="2M steps of covariance guidance and DDIS (default 10)")
    parser.add_argument("--krylov", type=int, help="GMRES iterations of covariance guidance and DDIS (default 16)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inverse_linear_gaussian.json"))
    args = parser.parse_args()
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    from oplearn.diffusion.noise import GRFNoise
    from oplearn.inverse.command import DEFAULT_STEPS
    from oplearn.inverse.guidance import DEFAULT_KRYLOV
    from oplearn.inverse.linear_gaussian import LinearGaussianPoisson
    from oplearn.inverse.observations import PointObservation
    from oplearn.inverse.posterior import calibration, summarize
    from oplearn.pdes.poisson import Poisson
    from oplearn.seeding import generator
    from oplearn.training.rundir import write_json

    torch.set_num_threads(args.threads)
    args.steps = args.steps or DEFAULT_STEPS["covariance"]
    rows, setup_seconds = [], {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(rows: list) -> None:
        write_json(out, {"args": vars(args), "noise_fraction": NOISE, "setup_seconds": setup_seconds, "rows": rows})

    for n in args.resolutions:
        t0 = time.perf_counter()
        lg = LinearGaussianPoisson(Poisson(), n, noise=GRFNoise())
        ddis = (*_decoupled(lg, GRFNoise()), GRFNoise()) if "ddis" in args.methods else None
        setup_seconds[n] = time.perf_counter() - t0
        print(f"{n}x{n}: exact denoisers in {setup_seconds[n]:.0f} s", flush=True)
        for points in args.points:
            for direction in args.directions:
                observed = 1 if direction == "inverse" else 0
                other = 1 - observed
                per_case = {name: [] for name in args.methods}
                for case in range(args.cases):
                    g = generator(7, n, points, observed, case)
                    truth = lg.sample_prior(1, g)[0]
                    obs = PointObservation(
                        lg.shape, points, channels=observed, noise=NOISE * float(lg.scale[observed]), generator=g
                    )
                    y = obs.observe(truth[None], g)[0]
                    mean, std = lg.posterior(obs, y)
                    mean = mean[0]
                    bayes = ((mean[other] - truth[other]).norm() / truth[other].norm()).item()
                    mc = math.sqrt(std[other].square().sum().item() / args.samples)
                    # what the mean of `samples` exact draws scores on average: E||mean_M - truth||^2
                    # = ||mean - truth||^2 + trace(Sigma) / M
                    bayes_m = (
                        math.sqrt((mean[other] - truth[other]).norm().item() ** 2 + mc**2) / truth[other].norm().item()
                    )
                    for name in args.methods:
                        t1 = time.perf_counter()
                        x, passes = run_method(
                            name, lg, ddis, obs, y, args.samples, seed=1000 + case, steps=args.steps, krylov=args.krylov
                        )
                        seconds = time.perf_counter() - t1
                        post = summarize(x)
                        error = ((post.mean[other] - truth[other]).norm() / truth[other].norm()).item()
                        per_case[name].append(
                            {
                                "error": error,
                                "bayes_error": bayes,
                                "ratio": error / bayes,
                                "bayes_error_of_mean_of_draws": bayes_m,
                                "ratio_to_mean_of_draws": error / bayes_m,
                                "gap_mc": (post.mean[other] - mean[other]).norm().item() / mc,
                                "calibration_90": calibration(post, truth)[other].item(),
                                "std_ratio": (post.std[other].mean() / std[other].mean()).item(),
                                "seconds": seconds,
                                "forward_passes": passes[0],
                                "backward_passes": passes[1],
                            }
                        )
                        r = per_case[name][-1]
                        print(
                            f"{n}x{n} {points:4d} {direction:7s} case {case} {name:11s} error {error:.4f} (Bayes {bayes:.4f}, "
                            f"x{r['ratio']:.3f}; x{r['ratio_to_mean_of_draws']:.3f} of {args.samples} exact draws) gap {r['gap_mc']:.2f} MC, calibration {r['calibration_90']:.3f}, "
                            f"{seconds:.1f} s",
                            flush=True,
                        )
                for name, cases in per_case.items():
                    mean_row = {k: sum(c[k] for c in cases) / len(cases) for k in cases[0]}
                    rows.append(
                        {
                            "resolution": n,
                            "points": points,
                            "direction": direction,
                            "method": name,
                            "label": LABELS[name].format(
                                krylov=args.krylov or DEFAULT_KRYLOV["covariance"],
                                steps=args.steps,
                            ),
                            **mean_row,
                            "cases": cases,
                        }
                    )
                write(rows)  # after every cell: a long run that stops early keeps what it measured

    print(
        "\n| grid | points | direction | method | error (Bayes) | ratio | ratio to M exact draws | gap / MC error "
        "| calibration 90% | s per case |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['resolution']} | {r['points']} | {r['direction']} | {r['label']} | {r['error']:.4f} ({r['bayes_error']:.4f}) | "
            f"{r['ratio']:.3f} | {r['ratio_to_mean_of_draws']:.3f} | {r['gap_mc']:.2f} | {r['calibration_90']:.3f} | {r['seconds']:.1f} |"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
