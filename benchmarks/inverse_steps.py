"""Darcy inverse problems: posterior-mean error against the number of sampler steps, per sampler.

Usage: python benchmarks/inverse_steps.py [--prior runs/inverse_darcy/prior_1000_200] [--cases 4] [--samples 8]
       [--steps 10 20 50 200] [--samplers euler heun dpmpp2m dpmpp3m unipc] [--unmatched] [--krylov 4] [--rho 7]
       [--threads 2] [--out FILE]

The task-level companion of ``sampler_steps.py`` (which measures the distance to the ODE's
own solution): the same trained joint (a, u) Darcy prior, test cases (seed 1) and 500-point
observations as ``inverse_darcy.py``, DPS with normalized guidance (step-matched to the
sampler's schedule; ``--unmatched`` applies the full correction at every step, which the
multistep solvers still take at first order; ``--krylov K`` takes up to K guidance directions
per step) and ``--samples`` draws, the deterministic ODE samplers only (no churn) on the Karras
schedule of exponent ``--rho``. For each sampler and number of steps: the forward error
(relative L2 of u's posterior mean, a observed) and the inverse error (coefficient error rate,
u observed), averaged over ``--cases``, with the denoiser evaluations per draw (forward passes
with a vector-Jacobian product), the extra forward passes per evaluation that ``--krylov``
adds (each with a vector-Jacobian product) and the wall time. Writes
benchmarks/results/inverse_steps.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
POINTS = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default=str(ROOT / "runs" / "inverse_darcy" / "prior_1000_200"))
    parser.add_argument(
        "--test",
        default=str(ROOT / "runs" / "inverse_darcy" / "darcy_test_64_12.h5"),
        help="test cases (inverse_darcy.py writes them, seed 1)",
    )
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 200])
    parser.add_argument("--samplers", nargs="+", default=["euler", "heun", "dpmpp2m", "dpmpp3m", "unipc"])
    parser.add_argument("--unmatched", action="store_true", help="guidance not matched to the step size")
    parser.add_argument(
        "--krylov", type=int, default=1, help="most guidance directions per step (step-matched guidance)"
    )
    parser.add_argument("--rho", type=float, default=7.0, help="exponent of the Karras schedule")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inverse_steps.json"))
    args = parser.parse_args()

    from oplearn.data.files import load_fields
    from oplearn.diffusion.samplers import SAMPLERS
    from oplearn.diffusion.schedules import karras_sigmas
    from oplearn.inverse.observations import PointObservation
    from oplearn.inverse.posterior import coefficient_error_rate, sample_posterior
    from oplearn.inverse.setup import load_setup
    from oplearn.metrics import relative_l2
    from oplearn.pdes.darcy import Darcy
    from oplearn.seeding import generator

    torch.set_num_threads(args.threads)
    setup = load_setup(args.prior)
    test = load_fields(args.test)
    truth = torch.cat([test.inputs, test.outputs], dim=1).double()[: args.cases]
    darcy = Darcy()
    shape = (2, *setup.grid.shape)
    guidance = {"scale": "normalized", **({"schedule": None} if args.unmatched else {"krylov": args.krylov})}
    calls = [0]

    def denoise(x, sigma):  # counts the network's passes: one per step, plus one per extra Krylov direction
        calls[0] += 1
        return setup.denoise(x, sigma)

    results: dict = {}
    for sampler in args.samplers:
        for steps in args.steps:
            t0, calls[0] = time.perf_counter(), 0
            row = {}
            for problem, channel in {"forward": 0, "inverse": 1}.items():
                means = []
                for i in range(args.cases):
                    obs = PointObservation(shape, POINTS, channels=channel, generator=generator(1, 100 + i, channel))
                    x = sample_posterior(
                        denoise,
                        obs,
                        obs.apply(truth[i : i + 1])[0],
                        setup.prior_shape,
                        args.samples,
                        karras_sigmas(steps, setup.sigma_min, setup.sigma_max, rho=args.rho),
                        sampler=sampler,
                        fields=setup.fields,
                        noise=setup.noise,
                        generator=generator(2, i),
                        guidance=guidance,
                    )
                    means.append(x.double().mean(dim=0))
                means = torch.stack(means)
                if problem == "forward":
                    row["forward_u"] = relative_l2(means[:, 1:], truth[:, 1:]).mean().item()
                else:
                    row["inverse_error_rate"] = (
                        coefficient_error_rate(means[:, :1], truth[:, :1], darcy.low, darcy.high).mean().item()
                    )
            row["evaluations"] = SAMPLERS[sampler]().evaluations(karras_sigmas(steps))
            row["krylov_passes_per_step"] = calls[0] / (2 * args.cases * row["evaluations"]) - 1
            row["seconds"] = time.perf_counter() - t0
            results.setdefault(sampler, {})[steps] = row
            print(
                f"{sampler:8s} {steps:4d} steps ({row['evaluations']:4d} evaluations): forward u {row['forward_u']:.4f}, "
                f"inverse error rate {row['inverse_error_rate']:.4f}, {row['krylov_passes_per_step']:.2f} extra passes/step "
                f"({row['seconds']:.0f} s)",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"args": vars(args), "points": POINTS, "results": results}, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
