"""Density sampling: the issue's two claims, each over several training seeds at an equal budget.

``lv_vs_kl`` -- DIS on GMM40 (2D), ``configs/sample_gmm40_dis.yaml``: the reverse KL against the
log-variance loss on detached paths of a behaviour process, the sampler's control plus
independent N(0, eps^2) noise at every step (eps = 0: the current control; 0.5: the shipped
``sample_gmm40_dis_lv.yaml``; 5: about sqrt(Var_explore / Var_kernel) = eps sqrt(dt) = 0.6, the
kernel variance widened by about 40%, the size of ``gfn-diffusion``'s exploration). At an equal
budget of target evaluations (the log-variance steps evaluate the target twice per path and
time step, once to simulate and once along the detached path, so they get half the steps) and,
for eps = 0.5, at an equal number of steps. Entropic mode coverage, log Z error and ELBO of one
estimate of ``--eval`` samples per trained sampler.

``cmcd_lv`` -- CMCD on GMM40 (2D) from the N(0, 40^2) start, ``configs/sample_gmm40_cmcd.yaml``:
the reverse KL against the log-variance loss with exploration eps = 0, 5, 20 (overdamped CMCD
replays the target scores of its simulation, so both losses cost the same evaluations per step).

``scld_lv`` -- SCLD on GMM40 (2D) from the N(0, 40^2) start, ``configs/sample_gmm40_scld.yaml``
(64 steps in 4 sub-trajectories): the reverse KL against the log-variance loss of sub-trajectories
without exploration, alone and with SCLD's remedies, a prioritised replay buffer of 20 batches per
sub-trajectory (half of every batch replayed) and one HMC move (5 leapfrog steps of 0.2, the SMC
baseline's) after every sub-trajectory, in training and in the estimate; both with the learned
annealing schedule; the buffer with exploration 20 (the control noise that kept CMCD's
log-variance training from collapsing). The same number of training steps; the moves and the
replayed paths add target evaluations (counted).

``many_well_off_policy`` -- CMCD on Many-Well (32D), ``configs/sample_many_well_cmcd.yaml``,
trained long: the reverse KL against the log-variance loss on paths of the exploring behaviour
process (exploration eps = 2, 5; and eps = 2 with sigma fixed, ``learn_diffusion: false``). Each double well's minor mode holds 15.6% of its mass, so a
sampler that drops it in all 16 wells has a log Z error of 16 log(1/0.844) = 2.71 with a high
ESS: the reverse KL's mode collapse, which off-policy losses are meant to prevent (Sendera et al.
2024).

``many_well_local_search`` -- DDS on Many-Well (32D), ``configs/sample_many_well_dds.yaml``, at
the reference's learning rate 1e-3 (Sendera et al. 2024): the reverse KL against the log-variance
loss with exploration 0.5, alone and with local search (``sampling.local_search``: every other
step on backward paths from MALA-refined samples of a rank-prioritised buffer,
:mod:`oplearn.sampling.local_search`), and trajectory balance with the same (its log Z from the
initial ELBO, learning rate 0.1): the settings of the rows with the lowest published Many-Well
errors.

``underdamped_steps`` -- CMCD (Euler-Maruyama, N = 64 steps) against underdamped CMCD (OBABO,
N/2 steps with the mass learned or fixed, and N steps for reference) on Funnel (10D),
``configs/sample_funnel_cmcd[_ud].yaml``, the same training steps: log Z error and ELBO.

Every run goes through the training loop of ``train.task: sampler`` (the table's rows,
``benchmarks/density_sampling.py``); the seed is the run seed (network initialisation and
training paths). Reported: mean and 95% Student-t half-width over seeds, and for each
comparison the per-seed paired difference with its interval.

    python benchmarks/sampling_claims.py lv_vs_kl --seeds 5 --epochs 4
    python benchmarks/sampling_claims.py underdamped_steps --seeds 5 --epochs 4
    python benchmarks/sampling_claims.py cmcd_lv --seeds 3 --epochs 2
    python benchmarks/sampling_claims.py scld_lv --seeds 3 --epochs 2
    python benchmarks/sampling_claims.py many_well_off_policy --seeds 1 --epochs 40
    python benchmarks/sampling_claims.py many_well_local_search --seeds 1 --epochs 40
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from density_sampling import PRESETS, RESULTS, fmt, row_config

from oplearn.training.rundir import write_json

#: SCLD's remedies (``scld_lv``): a replay buffer of 20 batches of 256 sub-trajectories per block,
#: one HMC move after every block.
SCLD_REPLAY = {"sampling.method_params.replay_capacity": 20 * 256}
SCLD_HMC = {
    "sampling.method_params.mcmc": "hmc",
    "sampling.method_params.mcmc_step_size": 0.2,
    "sampling.method_params.leapfrog": 5,
}

#: The log-variance loss on paths of the exploring behaviour process, Many-Well.
MANY_WELL_LV = {"sampling.loss": "log_variance", "sampling.exploration": 0.5}

#: experiment -> variant -> (row, overrides, epochs as a multiple of --epochs)
EXPERIMENTS = {
    "lv_vs_kl": {
        "kl": ("gmm40_dis", {}, 1.0),
        "lv_eps0_equal_evals": ("gmm40_dis", {"sampling.loss": "log_variance", "sampling.exploration": 0.0}, 0.5),
        "lv_eps0.5_equal_evals": ("gmm40_dis", {"sampling.loss": "log_variance", "sampling.exploration": 0.5}, 0.5),
        "lv_eps5_equal_evals": ("gmm40_dis", {"sampling.loss": "log_variance", "sampling.exploration": 5.0}, 0.5),
        "lv_eps0.5_equal_steps": ("gmm40_dis", {"sampling.loss": "log_variance", "sampling.exploration": 0.5}, 1.0),
    },
    "cmcd_lv": {
        "kl": ("gmm40_cmcd", {}, 1.0),
        "lv_eps0": ("gmm40_cmcd", {"sampling.loss": "log_variance", "sampling.exploration": 0.0}, 1.0),
        "lv_eps5": ("gmm40_cmcd", {"sampling.loss": "log_variance", "sampling.exploration": 5.0}, 1.0),
        "lv_eps20": ("gmm40_cmcd", {"sampling.loss": "log_variance", "sampling.exploration": 20.0}, 1.0),
    },
    "scld_lv": {
        "kl": ("gmm40_scld", {}, 1.0),
        "lv": ("gmm40_scld", {"sampling.loss": "log_variance"}, 1.0),
        "lv_replay": ("gmm40_scld", {"sampling.loss": "log_variance", **SCLD_REPLAY}, 1.0),
        "lv_hmc": ("gmm40_scld", {"sampling.loss": "log_variance", **SCLD_HMC}, 1.0),
        "lv_replay_hmc": ("gmm40_scld", {"sampling.loss": "log_variance", **SCLD_REPLAY, **SCLD_HMC}, 1.0),
        "lv_replay_hmc_annealing": (
            "gmm40_scld",
            {
                "sampling.loss": "log_variance",
                **SCLD_REPLAY,
                **SCLD_HMC,
                "sampling.method_params.learn_annealing": True,
            },
            1.0,
        ),
        "lv_replay_eps20": (
            "gmm40_scld",
            {"sampling.loss": "log_variance", "sampling.exploration": 20.0, **SCLD_REPLAY},
            1.0,
        ),
    },
    "many_well_off_policy": {
        "kl": ("many_well_cmcd", {}, 1.0),
        "lv_eps2": ("many_well_cmcd", {"sampling.loss": "log_variance", "sampling.exploration": 2.0}, 1.0),
        "lv_eps5": ("many_well_cmcd", {"sampling.loss": "log_variance", "sampling.exploration": 5.0}, 1.0),
        "lv_eps2_fixed_sigma": (
            "many_well_cmcd",
            {
                "sampling.loss": "log_variance",
                "sampling.exploration": 2.0,
                "sampling.method_params.learn_diffusion": False,
            },
            1.0,
        ),
    },
    "many_well_local_search": {
        "kl": ("many_well_dds", {"train.lr": 1e-3}, 1.0),
        "lv": ("many_well_dds", {"train.lr": 1e-3, **MANY_WELL_LV}, 1.0),
        "lv_ls": ("many_well_dds", {"train.lr": 1e-3, **MANY_WELL_LV, "sampling.local_search": {}}, 1.0),
        "tb_ls": (
            "many_well_dds",
            {
                "train.lr": 1e-3,
                **MANY_WELL_LV,
                "sampling.loss": "trajectory_balance",
                "sampling.local_search": {},
            },
            1.0,
        ),
    },
    "underdamped_steps": {
        "od_N": ("funnel_cmcd", {}, 1.0),
        "ud_N/2": ("funnel_cmcd_ud", {}, 1.0),
        "ud_N/2_fixed_mass": ("funnel_cmcd_ud", {"sampling.method_params.learn_mass": False}, 1.0),
        "ud_N": ("funnel_cmcd_ud", {"sampling.method_params.steps": 64}, 1.0),
    },
}

#: experiment -> (baseline variant, [variants compared with it], metrics)
COMPARISONS = {
    "lv_vs_kl": (
        "kl",
        ["lv_eps0_equal_evals", "lv_eps0.5_equal_evals", "lv_eps5_equal_evals", "lv_eps0.5_equal_steps"],
        ["mode_coverage", "log_Z_error", "elbo"],
    ),
    "cmcd_lv": ("kl", ["lv_eps0", "lv_eps5", "lv_eps20"], ["log_Z_error", "elbo", "mode_coverage"]),
    "scld_lv": (
        "kl",
        ["lv", "lv_replay", "lv_hmc", "lv_replay_hmc", "lv_replay_hmc_annealing", "lv_replay_eps20"],
        ["log_Z_error", "elbo", "mode_coverage"],
    ),
    "many_well_off_policy": (
        "kl",
        ["lv_eps2", "lv_eps5", "lv_eps2_fixed_sigma"],
        ["log_Z_error", "elbo", "mode_coverage"],
    ),
    "many_well_local_search": ("kl", ["lv", "lv_ls", "tb_ls"], ["log_Z_error", "elbo", "mode_coverage"]),
    "underdamped_steps": ("od_N", ["ud_N/2", "ud_N/2_fixed_mass", "ud_N"], ["log_Z_error", "elbo"]),
}


def run_variant(experiment: str, variant: str, seed: int, epochs: int, eval_n: int, runs: Path) -> dict:
    """Train one (variant, seed) and evaluate it with one estimate of ``eval_n`` samples."""
    from oplearn.sampling.task import SamplerTask
    from oplearn.training.run import train_to_end
    from oplearn.training.rundir import open_run
    from oplearn.training.tasks import EvaluateOptions

    torch.set_num_threads(1)
    row, overrides, factor = EXPERIMENTS[experiment][variant]
    config = row_config(row, PRESETS["cpu"], max(1, round(epochs * factor)), {**overrides, "seed": seed})
    run_dir = runs / experiment / variant.replace("/", "_") / f"seed{seed}"
    cpu0 = time.process_time()
    train_to_end(config, run_dir, progress=False)
    cpu = time.process_time() - cpu0
    run = open_run(run_dir)
    (result,) = SamplerTask.evaluate(run, [], EvaluateOptions(device="cpu", samples=eval_n, seeds=1))
    log = run.log()
    out = {
        "experiment": experiment,
        "variant": variant,
        "seed": seed,
        "steps": config.sampling.method_params["steps"],
        "iterations": config.train.epochs * config.sampling.iterations,
        "train_evaluations": log[-1].get("target_evaluations") if log else None,
        "train_cpu_seconds": cpu,
        "metrics": {k: v[0] for k, v in result["metrics"].items()},
    }
    print(
        f"{variant} seed {seed}: "
        + ", ".join(
            f"{k} {out['metrics'][k]:.4g}" for k in ("mode_coverage", "log_Z_error", "elbo") if k in out["metrics"]
        )
        + f" ({out['iterations']} steps, {out['train_evaluations'] / 1e6:.2f}M evaluations, {cpu:.0f} CPU s)",
        flush=True,
    )
    return out


def summarise(experiment: str, results: list[dict]) -> dict:
    """Per variant: mean and interval of every metric over seeds; per comparison: paired differences."""
    from oplearn.sampling.task import interval

    by_variant: dict[str, list[dict]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)
    variants = {}
    for name, rs in by_variant.items():
        keys = rs[0]["metrics"].keys()
        variants[name] = {
            "seeds": [r["seed"] for r in rs],
            "steps": rs[0]["steps"],
            "iterations": rs[0]["iterations"],
            "train_evaluations": interval([r["train_evaluations"] or 0 for r in rs])[0],
            "train_cpu_seconds": interval([r["train_cpu_seconds"] for r in rs])[0],
            "metrics": {k: interval([r["metrics"][k] for r in rs]) for k in keys},
        }
    baseline, others, keys = COMPARISONS[experiment]
    pairs = [(baseline, o) for o in others]
    paired = []
    for a, b in pairs:
        if a not in by_variant or b not in by_variant:
            continue
        per_seed_a = {r["seed"]: r["metrics"] for r in by_variant[a]}
        common = [r for r in by_variant[b] if r["seed"] in per_seed_a]
        paired.append(
            {
                "baseline": a,
                "variant": b,
                "difference (variant - baseline)": {
                    k: interval([r["metrics"][k] - per_seed_a[r["seed"]][k] for r in common]) for k in keys
                },
                "seeds": len(common),
            }
        )
    return {"variants": variants, "paired": paired}


def markdown(experiment: str, summary: dict) -> str:
    keys = COMPARISONS[experiment][2]
    lines = [
        "| variant | steps | training steps | target evaluations | CPU s | " + " | ".join(keys) + " |",
        "|" + "---|" * (5 + len(keys)),
    ]
    for name, v in summary["variants"].items():
        lines.append(
            f"| {name} | {v['steps']} | {v['iterations']} | {v['train_evaluations'] / 1e6:.2f}M | "
            f"{v['train_cpu_seconds']:.0f} | " + " | ".join(fmt(v["metrics"], k) for k in keys) + " |"
        )
    lines += ["", "| paired (variant - baseline) | seeds | " + " | ".join(keys) + " |", "|" + "---|" * (2 + len(keys))]
    for p in summary["paired"]:
        d = p["difference (variant - baseline)"]
        lines.append(
            f"| {p['variant']} - {p['baseline']} | {p['seeds']} | " + " | ".join(fmt(d, k) for k in keys) + " |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=EXPERIMENTS)
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0..seeds-1")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (of the configs' 50 steps) of the baseline")
    parser.add_argument("--eval", type=int, default=2000, help="samples of the estimate per trained sampler")
    parser.add_argument("--variants", nargs="*", help="a subset of the experiment's variants")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs (one thread each)")
    parser.add_argument("--runs", type=Path, default=Path("runs") / "sampling_claims")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/sampling_claims_<experiment>.json")
    args = parser.parse_args(argv)
    variants = args.variants or list(EXPERIMENTS[args.experiment])
    t0 = time.perf_counter()
    jobs = [(v, s) for s in range(args.seeds) for v in variants]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(run_variant, args.experiment, v, s, args.epochs, args.eval, args.runs) for v, s in jobs]
        results = [f.result() for f in futures]
    summary = summarise(args.experiment, results)
    table = markdown(args.experiment, summary)
    minutes = (time.perf_counter() - t0) / 60
    print(table)
    print(f"total {minutes:.1f} min wall, {args.workers} worker(s) of 1 thread")
    out = args.out or RESULTS / f"sampling_claims_{args.experiment}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        out,
        {
            "experiment": args.experiment,
            "seeds": args.seeds,
            "epochs": args.epochs,
            "eval": args.eval,
            "summary": summary,
            "runs": results,
            "markdown": table,
            "minutes": minutes,
            "torch": torch.__version__,
            "load_average": os.getloadavg(),
        },
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
