"""Darcy 64x64 from 500 observed points: diffusion-prior posterior mean against baselines.

Usage: python benchmarks/inverse_darcy.py [--n-train 200] [--cases 5] [--samples 8] [--steps 30]
       [--sampler heun --churn 40] [--scale covariance] [--krylov 8]
       [--prior-epochs 20] [--baseline-epochs 10] [--width 16] [--stage all|baselines|prior|posterior]
       [--ddis [--forward-epochs 100]] [--ddis-solver] [--no-joint] [--problems forward inverse]
       [--threads 2] [--out FILE]

Two problems on the DiffusionPDE / FunDPS Darcy recipe (a in {3, 12}, f = 1) at 64x64:

* inverse: observe u at 500 random nodes (noise-free), recover the coefficient a;
* forward: observe a at 500 random nodes, recover the solution u.

Methods: the posterior mean of ``--samples`` DPS draws (guidance ``--scale``: covariance, the
default, or normalized, carried by the GRF noise covariance; ``--sampler`` with ``--steps``
Karras steps and optional stochastic ``--churn``; ``--krylov`` directions per step, default
the scale's) from a joint diffusion prior over (a, u) trained on ``--n-train`` samples;
interpolation (forward: interpolate a, threshold, solve); and an FNO regression from the
interpolated observations (and the mask) to the unknown field, trained on the same samples with
fresh random masks. With ``--ddis`` also the decoupled variant (DDIS): a diffusion prior on the
coefficient alone (``diffusion.fields: inputs``, same network and epochs) and an FNO forward
operator a -> u (``--forward-epochs``), both trained on the same ``--n-train`` pairs, sampled
with the same guidance through [a, G(a)]; with ``--ddis-solver`` the same coefficient prior
with the Darcy solver itself as G (:class:`oplearn.inverse.solver_operator.SolverOperator`,
gradients by the adjoint method); ``--no-joint`` skips the joint prior. Scores on ``--cases`` test samples (seed 1): relative
L2 of u and a, the coefficient error rate (binarised at 7.5) and the 90%-band calibration of
the posterior. On one CPU thread a width-32 prior takes about 24 s per epoch over 1000
samples (FunDPS trains on 50,000 at 128x128 on GPUs); ``--stage prior`` trains the priors
alone, e.g. in a second process; ``--stage posterior`` skips the regression baselines (their
training) and scores the posterior means and the interpolation baseline only. Trained runs are
kept in ``--work``, reused, and resumed if stopped early. Writes benchmarks/results/inverse_darcy.json (``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
POINTS = 500
#: The standard test set: this many cases from seed 1 (``--cases`` below it scores the first ones).
TEST_CASES = 12

#: FunDPS (500 observed points at 128x128, 500 steps), relative L2 in %: forward (u) / inverse (a).
FUNDPS = {
    "FunDPS": {"forward_u": 2.49, "inverse_a": 5.18},
    "DiffusionPDE (2000 steps)": {"forward_u": 6.07, "inverse_a": 7.87},
}


def train_regression(
    work: Path, fields: torch.Tensor, grid, observed: int, target: int, epochs: int, width: int, seed: int
):
    """An FNO from (interpolated observations of ``observed``, mask) to channel ``target``."""
    from oplearn.config import validate_config
    from oplearn.data.files import write_fields
    from oplearn.inverse.baselines import regression_pairs
    from oplearn.seeding import generator
    from oplearn.training.run import load_run, train_to_end

    run = work / f"regression_{observed}_to_{target}_{len(fields)}_{epochs}_{width}"
    if not run.with_suffix(".h5").exists():
        x, y = regression_pairs(fields, grid, POINTS, [observed], [target], generator=generator(seed, 7, observed))
        write_fields(
            run.with_suffix(".h5"),
            x,
            y,
            grid,
            (["observed", "mask"], ["target"]),
            "darcy",
            {"derived": "interpolated observations"},
            seed,
        )
    model = {"name": "fno", "modes": 12, "width": width, "padding": 0.125}
    train_to_end(
        validate_config(
            {
                "seed": seed,
                "data": {"path": str(run.with_suffix(".h5")), "n_val": 40, "batch_size": 20},
                "model": model,
                "train": {"epochs": epochs, "lr": 3e-3, "device": "cpu"},
            }
        ),
        run,
        progress=False,
    )
    return load_run(run)[0]


def train_prior(work: Path, train_path: Path, args, fields: str = "joint") -> Path:
    """A diffusion prior (``train.task: diffusion``) over ``fields`` (joint (a, u) or the inputs a), trained once and reused."""
    from oplearn.config import validate_config
    from oplearn.training.run import train_to_end

    run = work / (f"prior_{args.n_train}_{args.prior_epochs}" + ("" if fields == "joint" else f"_{fields}"))
    train_to_end(
        validate_config(
            {
                "seed": 0,
                "data": {"path": str(train_path), "n_train": args.n_train, "n_val": 40, "batch_size": 20},
                "train": {
                    "task": "diffusion",
                    "epochs": args.prior_epochs,
                    "lr": 2e-3,
                    "weight_decay": 0.0,
                    "scheduler": "cosine",
                    "device": "cpu",
                    "threads": args.threads,
                },
                "diffusion": {
                    "fields": fields,
                    "noise": {"kind": "grf", "alpha": 2.0, "tau": 3.0},
                    "net": {
                        "modes": 12,
                        "width": args.width,
                        "scales": [0.5, 0.25],
                        "embedding": 64,
                        "projection_channels": 64,
                    },
                },
            }
        ),
        run,
        progress=False,
    )
    return run


def train_forward(work: Path, train_path: Path, args) -> Path:
    """The DDIS forward operator: an FNO a -> u on the same training pairs as the priors."""
    from oplearn.config import validate_config
    from oplearn.training.run import train_to_end

    run = work / f"forward_{args.n_train}_{args.forward_epochs}_{args.width}"
    train_to_end(
        validate_config(
            {
                "seed": 0,
                "data": {"path": str(train_path), "n_train": args.n_train, "n_val": 40, "batch_size": 20},
                "model": {"name": "fno", "modes": 12, "width": args.width, "padding": 0.125},
                "train": {"epochs": args.forward_epochs, "lr": 3e-3, "device": "cpu", "threads": args.threads},
            }
        ),
        run,
        progress=False,
    )
    return run


def posterior_runs(args, work: Path, train_path: Path, truth, observations, problems, score, timings) -> None:
    """Train (or reuse) the joint (a, u) prior and score DPS posterior means on every case."""
    from oplearn.diffusion.schedules import karras_sigmas
    from oplearn.inverse.guidance import DEFAULT_KRYLOV
    from oplearn.inverse.posterior import calibration, coefficient_error_rate, sample_posterior, summarize
    from oplearn.inverse.setup import load_setup
    from oplearn.metrics import relative_l2
    from oplearn.seeding import generator

    arms = {}
    if not args.no_joint:
        arms["joint prior"] = lambda: (train_prior(work, train_path, args), None, False)
    if args.ddis:
        arms["DDIS: coefficient prior + FNO forward operator"] = lambda: (
            train_prior(work, train_path, args, "inputs"),
            train_forward(work, train_path, args),
            False,
        )
    if args.ddis_solver:
        arms["DDIS: coefficient prior + the Darcy solver (adjoint)"] = lambda: (
            train_prior(work, train_path, args, "inputs"),
            None,
            True,
        )
    for arm, make in arms.items():
        t0 = time.perf_counter()
        run, forward_run, forward_solver = make()
        timings[f"training_{arm}_s"] = time.perf_counter() - t0
        setup = load_setup(run, forward_run, forward_solver=forward_solver)
        sigmas = karras_sigmas(args.steps, setup.sigma_min, setup.sigma_max)
        for problem in problems:
            t0 = time.perf_counter()
            means, cover, by_draws = [], [], {}
            for i, obs in enumerate(observations[problem]):
                x = sample_posterior(
                    setup.denoise,
                    obs,
                    obs.apply(truth[i : i + 1])[0],
                    setup.prior_shape,
                    args.samples,
                    sigmas,
                    sampler=args.sampler,
                    churn=args.churn,
                    fields=setup.fields,
                    noise=setup.noise,
                    guidance={"scale": args.scale, "krylov": args.krylov},
                    generator=generator(2, i),
                )
                post = summarize(x)
                means.append(post.mean)
                cover.append(calibration(post, truth[i]))
                m = 2
                while m <= len(x):  # the unobserved field's error of the mean of the first m draws
                    unknown = slice(1 - problems[problem], 2 - problems[problem])
                    error = relative_l2(x[None, :m, unknown].double().mean(1), truth[i : i + 1, unknown]).item()
                    by_draws.setdefault(f"relative_l2_unobserved_mean_of_{m}", []).append(error)
                    m *= 2
                print(
                    f"{arm}, {problem} case {i}: u {relative_l2(post.mean[None, 1:], truth[i : i + 1, 1:]).item():.4f}, "
                    f"coefficient error rate {coefficient_error_rate(post.mean[None, :1], truth[i : i + 1, :1], setup.pde.low, setup.pde.high).item():.4f}, "
                    f"{time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
            cover = torch.stack(cover)
            krylov = args.krylov or DEFAULT_KRYLOV[args.scale]
            label = (
                f"{args.samples} samples, {args.sampler} {args.steps} steps"
                + (f", churn {args.churn:g}" if args.churn else "")
                + (
                    f", covariance guidance (GMRES <= {krylov})"
                    if args.scale == "covariance"
                    else f", Krylov guidance ({krylov} directions)"
                    if krylov > 1
                    else ""
                )
            )
            score(
                problem,
                f"DPS posterior mean, {arm} ({label})",
                torch.stack(means),
                {"calibration_a": cover[:, 0].tolist(), "calibration_u": cover[:, 1].tolist(), **by_draws},
            )
            timings[f"sampling_{arm}_{problem}_s"] = time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sampler", default="dpmpp2m", help="posterior sampler (oplearn.diffusion.samplers.SAMPLERS)")
    parser.add_argument("--churn", type=float, default=0.0, help="stochastic churn S_churn (euler, heun)")
    parser.add_argument(
        "--scale", choices=("covariance", "normalized", "likelihood"), default="covariance", help="guidance step"
    )
    parser.add_argument(
        "--krylov", type=int, help="most Krylov directions per step (default: the scale's, oplearn.inverse.guidance)"
    )
    parser.add_argument("--prior-epochs", type=int, default=20)
    parser.add_argument("--baseline-epochs", type=int, default=10)
    parser.add_argument(
        "--width", type=int, default=16, help="channel width of the prior's and the baselines' networks"
    )
    parser.add_argument(
        "--stage",
        choices=("all", "baselines", "prior", "posterior"),
        default="all",
        help="baselines / prior: only train (and cache) those, e.g. in two processes; "
        "posterior: everything but the regression baselines",
    )
    parser.add_argument(
        "--ddis", action="store_true", help="also the decoupled prior (coefficient prior + forward FNO)"
    )
    parser.add_argument(
        "--ddis-solver",
        action="store_true",
        help="also the coefficient prior with the Darcy solver itself as the forward operator (adjoint method)",
    )
    parser.add_argument("--no-joint", action="store_true", help="skip the joint (a, u) prior's arm")
    parser.add_argument("--forward-epochs", type=int, default=100, help="epochs of the DDIS forward operator")
    parser.add_argument(
        "--problems", nargs="+", choices=("forward", "inverse"), default=["forward", "inverse"], help="which to score"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=str(ROOT / "runs" / "inverse_darcy"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "inverse_darcy.json"))
    args = parser.parse_args()

    from oplearn.data.files import load_fields
    from oplearn.data.generate import generate_dataset
    from oplearn.inverse.baselines import interpolate_and_solve, regression_input
    from oplearn.inverse.observations import PointObservation
    from oplearn.inverse.posterior import coefficient_error_rate
    from oplearn.metrics import relative_l2
    from oplearn.pdes.darcy import Darcy
    from oplearn.seeding import generator
    from oplearn.training.rundir import write_json

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    darcy = Darcy()
    t0 = time.perf_counter()
    train_path = work / f"darcy_train_64_{args.n_train}.h5"  # n_train + 40 validation samples
    tests = max(args.cases, TEST_CASES)  # fewer cases: the first ones of the standard test set
    test_path = work / f"darcy_test_64_{tests}.h5"
    if not train_path.exists():
        generate_dataset(darcy, args.n_train + 40, 64, train_path, seed=0, progress=False)
    if not test_path.exists():
        generate_dataset(darcy, tests, 64, test_path, seed=1, progress=False)
    train_data, test = load_fields(train_path), load_fields(test_path)
    grid = train_data.grid
    fields = torch.cat([train_data.inputs, train_data.outputs], dim=1)
    truth = torch.cat([test.inputs, test.outputs], dim=1).double()[: args.cases]
    timings = {"data_s": time.perf_counter() - t0}

    if args.stage == "prior":
        if not args.no_joint:
            train_prior(work, train_path, args)
        if args.ddis or args.ddis_solver:
            train_prior(work, train_path, args, "inputs")
        if args.ddis:
            train_forward(work, train_path, args)
        return
    t0 = time.perf_counter()
    regressors = (
        {}
        if args.stage == "posterior"
        else {
            "forward": train_regression(work, fields, grid, 0, 1, args.baseline_epochs, args.width, 0),
            "inverse": train_regression(work, fields, grid, 1, 0, args.baseline_epochs, args.width, 0),
        }
    )
    timings["baseline_training_s"] = time.perf_counter() - t0

    shape = (2, *grid.shape)
    problems = {p: c for p, c in {"forward": 0, "inverse": 1}.items() if p in args.problems}  # observed channel
    results = {p: {} for p in problems}

    def score(problem: str, method: str, pred: torch.Tensor, extra: dict | None = None) -> None:
        row = {
            "relative_l2_u": relative_l2(pred[:, 1:], truth[:, 1:]).tolist(),
            "relative_l2_a": relative_l2(pred[:, :1], truth[:, :1]).tolist(),
            "error_rate_a": coefficient_error_rate(pred[:, :1], truth[:, :1], darcy.low, darcy.high).tolist(),
            **(extra or {}),
        }
        results[problem][method] = row

    observations = {
        p: [PointObservation(shape, POINTS, channels=c, generator=generator(1, 100 + i, c)) for i in range(args.cases)]
        for p, c in problems.items()
    }
    for problem, channel in problems.items():
        obs = observations[problem]
        ys = [o.apply(truth[i : i + 1]) for i, o in enumerate(obs)]
        if problem in regressors:  # regression: the unknown channel from the FNO, the observed one interpolated
            pred = torch.zeros_like(truth)
            with torch.no_grad():
                for i, (o, y) in enumerate(zip(obs, ys)):
                    x = regression_input(o, y, grid, [channel])
                    pred[i, 1 - channel] = regressors[problem](x.float())[0, 0].double()
                    pred[i, channel] = x[0, 0]
            if problem == "inverse":  # u from the regressed coefficient, for reference
                pred[:, 1:] = darcy.solve(pred[:, :1].clamp_min(darcy.low), grid)
            score(problem, "FNO regression from interpolated observations", pred)
        if problem == "forward":
            pred = torch.cat([interpolate_and_solve(darcy, o, y, grid) for o, y in zip(obs, ys)])
            score(problem, "interpolate a, threshold, solve", pred)
    if args.stage in ("all", "posterior"):
        posterior_runs(args, work, train_path, truth, observations, problems, score, timings)

    summary = {
        p: {m: {k: sum(v) / len(v) for k, v in row.items() if isinstance(v, list)} for m, row in rows.items()}
        for p, rows in results.items()
    }
    for problem, rows in summary.items():
        print(
            f"\n{problem} ({'observe u, recover a' if problem == 'inverse' else 'observe a, recover u'}), "
            f"{POINTS} points, {args.cases} cases"
        )
        print("| method | rel. L2 u | rel. L2 a | coefficient error rate | calibration (90% band) a / u |")
        print("|---|---|---|---|---|")
        for method, s in rows.items():
            cal = f"{s['calibration_a']:.3f} / {s['calibration_u']:.3f}" if "calibration_a" in s else "-"
            print(
                f"| {method} | {s['relative_l2_u']:.4f} | {s['relative_l2_a']:.4f} | {s['error_rate_a']:.4f} | {cal} |"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        out,
        {
            "args": vars(args),
            "points": POINTS,
            "summary": summary,
            "per_case": results,
            "timings": timings,
            "context_relative_l2_percent": FUNDPS,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
