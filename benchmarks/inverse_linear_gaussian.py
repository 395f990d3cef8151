"""Gap between sampled and exact posteriors on a linear-Gaussian Poisson inverse problem.

Usage: python benchmarks/inverse_linear_gaussian.py [--resolution 16] [--points 40] [--noise 0.01]
       [--samples 64] [--cases 3]

The prior is the joint Gaussian of (source f, solution u) of the Poisson problem
(:class:`oplearn.inverse.linear_gaussian.LinearGaussianPoisson`, exact denoiser), ``points``
random nodes of u are observed with noise ``noise`` times u's prior scale, and the exact
posterior is closed-form. For each method the posterior mean of ``samples`` draws is compared
with the exact one: relative gap (per channel), the standardised gap (RMS over nodes of
(sampled - exact mean) / exact std, times sqrt(samples): about 1 when only Monte Carlo error
remains), the ratio of mean posterior standard deviations, and the 90%-band calibration
against the true field. Writes benchmarks/results/inverse_linear_gaussian.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

METHODS = {
    "exact guidance, dpmpp2m 20 steps": {"method": "dps", "steps": 20, "guidance": {"scale": "exact"}},
    "DPS normalized (w=1), dpmpp2m 20 steps": {"method": "dps", "steps": 20, "guidance": {"scale": "normalized"}},
    "DPS normalized (w=1), dpmpp2m 50 steps": {"method": "dps", "steps": 50, "guidance": {"scale": "normalized"}},
    "DPS normalized (w=1), not step-matched, dpmpp2m 50 steps": {"method": "dps", "steps": 50,
                                                                 "guidance": {"scale": "normalized", "schedule": None}},
    "DPS normalized (w=1), heun 50 steps": {"method": "dps", "steps": 50, "sampler": "heun", "guidance": {"scale": "normalized"}},
    "DAPS, 20 levels x (5 ODE + 50 Langevin)": {"method": "daps", "steps": 20, "daps_options": {"ode_steps": 5, "langevin_steps": 50}},
    "DAPS, 200 levels x (2 ODE + 20 Langevin)": {"method": "daps", "steps": 200, "daps_options": {"ode_steps": 2, "langevin_steps": 20}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--points", type=int, default=40)
    parser.add_argument("--noise", type=float, default=0.01, help="observation noise as a fraction of u's prior scale")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--cases", type=int, default=3)
    args = parser.parse_args()

    from oplearn.diffusion.schedules import karras_sigmas
    from oplearn.inverse.linear_gaussian import LinearGaussianPoisson
    from oplearn.inverse.observations import PointObservation
    from oplearn.inverse.posterior import calibration, sample_posterior, summarize
    from oplearn.pdes.poisson import Poisson

    torch.set_num_threads(2)
    lg = LinearGaussianPoisson(Poisson(), args.resolution)
    noise = args.noise * lg.scale[1].item()
    rows = {name: [] for name in METHODS}
    for case in range(args.cases):
        g = torch.Generator().manual_seed(100 + case)
        truth = lg.sample_prior(1, g)[0]
        obs = PointObservation(lg.shape, args.points, channels=1, noise=noise, generator=g)
        y = obs.observe(truth[None], g)[0]
        mean, std = lg.posterior(obs, y)
        mean = mean[0]
        free = std > 1e-8 * std.max()
        for name, spec in METHODS.items():
            t0 = time.perf_counter()
            x = sample_posterior(lg.denoiser, obs, y, lg.shape, args.samples, karras_sigmas(spec["steps"]), method=spec["method"],
                                 sampler=spec.get("sampler", "dpmpp2m"), fields=lg.fields, guidance=spec.get("guidance"),
                                 daps_options=spec.get("daps_options"), dtype=torch.float64,
                                 generator=torch.Generator().manual_seed(case))
            seconds = time.perf_counter() - t0
            post = summarize(x)
            row = {"seconds": seconds}
            for c, ch in enumerate(("f", "u")):
                gap = ((post.mean[c] - mean[c]).norm() / mean[c].norm()).item()
                z = ((post.mean[c] - mean[c]) / std[c])[free[c]].square().mean().sqrt().item() * math.sqrt(args.samples)
                row[ch] = {
                    "relative_gap": gap,
                    "standardized_gap": z,
                    "std_ratio": (post.std[c][free[c]].mean() / std[c][free[c]].mean()).item(),
                    "calibration_90": calibration(post, truth)[c].item(),
                    "relative_l2_sampled_mean": ((post.mean[c] - truth[c]).norm() / truth[c].norm()).item(),
                    "relative_l2_exact_mean": ((mean[c] - truth[c]).norm() / truth[c].norm()).item(),
                }
            rows[name].append(row)
            print(f"case {case} {name}: gap f {row['f']['relative_gap']:.4f} u {row['u']['relative_gap']:.4f} "
                  f"(standardized {row['f']['standardized_gap']:.2f} / {row['u']['standardized_gap']:.2f}), "
                  f"calibration f {row['f']['calibration_90']:.3f}, {seconds:.1f} s", flush=True)

    def avg(name, ch, key):
        return sum(r[ch][key] for r in rows[name]) / len(rows[name])

    summary = {}
    print("\n| method | gap f | gap u | standardized gap f / u | std ratio f / u | calibration f / u | time per case (s) |")
    print("|---|---|---|---|---|---|---|")
    for name in METHODS:
        s = {ch: {k: avg(name, ch, k) for k in rows[name][0][ch]} for ch in ("f", "u")}
        s["seconds"] = sum(r["seconds"] for r in rows[name]) / len(rows[name])
        summary[name] = s
        print(f"| {name} | {s['f']['relative_gap']:.4f} | {s['u']['relative_gap']:.4f} | {s['f']['standardized_gap']:.2f} / "
              f"{s['u']['standardized_gap']:.2f} | {s['f']['std_ratio']:.3f} / {s['u']['std_ratio']:.3f} | "
              f"{s['f']['calibration_90']:.3f} / {s['u']['calibration_90']:.3f} | {s['seconds']:.1f} |")
    out = ROOT / "benchmarks" / "results" / "inverse_linear_gaussian.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"args": vars(args), "noise": noise, "summary": summary, "cases": rows}, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
