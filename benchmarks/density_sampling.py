"""Density sampling: target x method table with an SMC baseline per target, and the issue's two comparisons.

Every learned row is a run of ``configs/sample_<row>.yaml`` through the training loop
(``train.task: sampler``: gradient clipping, cosine learning rate, exact resume), evaluated by
the task's ``evaluate`` with ``--eval`` samples under ``--seeds`` estimator seeds (mean and 95%
Student-t half-width over seeds). Target evaluations are counted by the target (a value with
its score is one evaluation). The SMC baseline (HMC kernels, 5 leapfrog steps, 2000 particles,
step sizes of the "Beyond ELBOs" target configurations) gets as many annealing steps as fit
the largest training budget of its row group. Metrics (:mod:`oplearn.sampling.metrics`): log Z
error, ELBO, EUBO, ESS/N, exact W2^2 against exact samples, entropic mode coverage.

Comparisons (read from the rows):
- ``lv_vs_kl``: DIS on GMM40 with the reverse KL (``gmm40_dis``) and with the log-variance loss
  on off-policy paths (``gmm40_dis_lv``): mode coverage (Richter & Berner 2024's claim);
- ``underdamped_steps``: CMCD with N steps against underdamped CMCD (OBABO) with N/2 steps per
  target: log Z error (Blessing et al. 2025's claim).

Published log Z errors on the same targets (:data:`PUBLISHED`: Funnel and Many-Well, Sendera et
al. 2024, Table 1) are printed beside the best learned row of their group and written with the
results.

    python benchmarks/density_sampling.py --preset cpu        # the configs as they are, 2 worker processes of 1 thread
    python benchmarks/density_sampling.py --preset gpu        # the papers' sizes: 128 steps (64 underdamped), batch 2000, 40000 steps
    python benchmarks/density_sampling.py --rows gmm40_dis gmm40_dis_lv --epochs 2   # a subset, shorter (results in *_reduced.json)

Runs are kept in ``--runs`` (default ``runs/density_sampling/<preset>``); a rerun resumes
unfinished runs and reuses finished rows (their result, ``row.json`` in the run directory, with
the training CPU time measured when they were trained). A run's training CPU time accumulates
over interruptions (``train_cpu.json``, written when training stops, also by Ctrl-C; the
interrupted epoch is counted in both sessions).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import yaml

from oplearn.training.rundir import write_json

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = Path(__file__).resolve().parent.parent / "configs"

GROUPS = {
    "gmm40": ["gmm40_pis", "gmm40_dis", "gmm40_dds", "gmm40_cmcd", "gmm40_cmcd_ud", "gmm40_scld"],
    "funnel": ["funnel_dis", "funnel_dds", "funnel_cmcd", "funnel_cmcd_ud"],
    "many_well": ["many_well_dis", "many_well_dds", "many_well_cmcd", "many_well_cmcd_ud"],
}
EXTRA = ["gmm40_dis_lv"]
UNDERDAMPED = [
    ("gmm40_cmcd", "gmm40_cmcd_ud"),
    ("funnel_cmcd", "funnel_cmcd_ud"),
    ("many_well_cmcd", "many_well_cmcd_ud"),
]

#: The SMC baseline's HMC step sizes (start, end of the annealing) and initial scale per target
#: ("Beyond ELBOs" target configurations).
SMC = {
    "gmm40": dict(scale=40.0, hmc=(0.2, 0.2)),
    "funnel": dict(scale=1.0, hmc=(0.001, 0.1)),
    "many_well": dict(scale=1.0, hmc=(0.1, 0.1)),
}

#: Published importance-weighted log Z errors (mean, standard deviation over 5 training runs) of
#: diffusion samplers on the same targets: Sendera et al., "Improved off-policy training of
#: diffusion samplers", NeurIPS 2024, Table 1 (column "Δ log Z^RW"; T = 100 steps, 25,000 training
#: iterations of batch 300, K = 2000 samples). No readable published number for GMM40 (d = 2).
PUBLISHED = {
    "source": "Sendera et al., NeurIPS 2024, Table 1, Δ log Z^RW (T = 100, 25,000 iterations, batch 300)",
    "funnel": {"TB + Expl. + LP": (0.051, 0.616), "DIS": (0.093, 0.038), "DDS": (0.206, 0.033), "PIS": (0.262, 0.008)},
    "many_well": {
        "VarGrad + Expl. + LP + LS": (0.02, 0.21),
        "TB + Expl. + LP + LS": (0.07, 0.17),
        "DDS": (0.23, 0.05),
        "PIS": (2.69, 0.04),
        "DIS": (3.05, 0.46),
    },
}

PRESETS = {
    "cpu": dict(overrides={}, steps_factor=1, eval=2000, seeds=5, workers=2, device="cpu"),
    "gpu": dict(
        overrides={"data.batch_size": 2000, "train.epochs": 40, "sampling.iterations": 1000, "train.lr": 5e-4},
        steps_factor=2,
        eval=2000,
        seeds=5,
        workers=1,
        device="cuda",
    ),
}


def row_config(name: str, preset: dict, epochs: int | None, overrides: dict | None = None):
    """The validated config of row ``name`` under ``preset``, then ``overrides`` (dotted keys such as
    ``sampling.loss`` or ``sampling.method_params.steps``) and an ``epochs`` override."""
    from oplearn.config import validate_config

    raw = yaml.safe_load((CONFIGS / f"sample_{name}.yaml").read_text())
    for key, value in {**preset["overrides"], **(overrides or {})}.items():
        *sections, field = key.split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[field] = value
    raw["sampling"]["method_params"]["steps"] = raw["sampling"]["method_params"]["steps"] * preset["steps_factor"]
    raw["train"]["device"] = preset["device"]
    raw["train"]["threads"] = 1 if preset["device"] == "cpu" else None
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    return validate_config(raw)


def run_row(name: str, preset: dict, runs: Path, epochs: int | None) -> dict:
    """Train (or resume, or reuse) row ``name`` and evaluate it."""
    from oplearn.sampling.task import SamplerTask
    from oplearn.training.run import train_to_end
    from oplearn.training.rundir import open_run
    from oplearn.training.tasks import EvaluateOptions

    torch.set_num_threads(1)
    config = row_config(name, preset, epochs)
    run_dir = runs / name
    if (run_dir / "row.json").exists():
        out = json.loads((run_dir / "row.json").read_text())
        print(format_row(out), flush=True)
        return out
    spent = json.loads((run_dir / "train_cpu.json").read_text()) if (run_dir / "train_cpu.json").exists() else {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        train_to_end(config, run_dir, progress=False)
    finally:
        train_cpu = spent.get("cpu_seconds", 0.0) + time.process_time() - cpu0
        train_wall = spent.get("wall_seconds", 0.0) + time.perf_counter() - wall0
        if run_dir.exists():
            write_json(run_dir / "train_cpu.json", {"cpu_seconds": train_cpu, "wall_seconds": train_wall})
    run = open_run(run_dir)
    (row,) = SamplerTask.evaluate(
        run, [], EvaluateOptions(device=preset["device"], samples=preset["eval"], seeds=preset["seeds"])
    )
    log = run.log()
    s = config.sampling
    out = {
        "row": name,
        "target": s.target,
        "method": s.method,
        "loss": s.loss,
        "steps": s.method_params["steps"],
        "iterations": config.train.epochs * s.iterations,
        "batch": config.data.batch_size,
        "train_evaluations": log[-1].get("target_evaluations") if log else None,
        "train_cpu_seconds": train_cpu,
        "train_wall_seconds": train_wall,
        "metrics": row["metrics"],
        "validation": [
            {k: r[k] for k in r if k.startswith("val_") or k in ("epoch", "target_evaluations")} for r in log
        ],
    }
    write_json(run_dir / "row.json", out)
    print(format_row(out), flush=True)
    return out


def run_smc(target_name: str, budget: int, seeds: int, eval_n: int) -> dict:
    from oplearn.sampling.methods import make_method
    from oplearn.sampling.metrics import sample_metrics
    from oplearn.sampling.targets import make_target
    from oplearn.sampling.task import interval
    from oplearn.seeding import generator

    torch.set_num_threads(1)
    spec = SMC[target_name]
    target = make_target(target_name)
    particles, leapfrog = eval_n, 5
    steps = max(8, min(2000, budget // (particles * (1 + leapfrog))))
    sampler = make_method(
        "smc",
        target,
        steps=steps,
        scale=spec["scale"],
        kernel="hmc",
        step_size=spec["hmc"][0],
        step_size_end=spec["hmc"][1],
        leapfrog=leapfrog,
    )
    values: dict[str, list[float]] = {}
    cpu0 = time.process_time()
    for s in range(seeds):
        est = sampler.estimate(particles, generator(0, 19, s))
        exact = target.sample(particles, generator(0, 20, s)) if target.has_samples else None
        for key, value in sample_metrics(target, est, exact).items():
            values.setdefault(key, []).append(value)
    out = {
        "row": f"{target_name}_smc",
        "target": target_name,
        "method": "smc",
        "loss": "-",
        "steps": steps,
        "train_evaluations": target.evaluations // seeds,
        "train_cpu_seconds": (time.process_time() - cpu0) / seeds,
        "metrics": {k: interval(v) for k, v in values.items()},
    }
    print(format_row(out), flush=True)
    return out


def fmt(metrics: dict, key: str) -> str:
    if key not in metrics:
        return "-"
    mean, half = metrics[key]
    return f"{mean:.3g}" if not math.isfinite(half) else f"{mean:.3g} ± {half:.2g}"


COLUMNS = ["log_Z_error", "elbo", "eubo", "ess", "w2", "mode_coverage"]
HEADER = (
    "| row | method (loss) | steps | target evaluations (training; SMC: one run) | CPU s | log Z error | ELBO | EUBO | "
    "ESS/N | W2² | mode coverage |\n|" + "---|" * 11
)


def format_row(row: dict) -> str:
    m = row["metrics"]
    evals = row.get("train_evaluations") or 0
    cells = [
        row["row"],
        f"{row['method']} ({row['loss']})",
        str(row["steps"]),
        f"{evals / 1e6:.2f}M",
        f"{row['train_cpu_seconds']:.0f}",
    ]
    return "| " + " | ".join(cells + [fmt(m, k) for k in COLUMNS]) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--rows", nargs="*", help="rows (config names without 'sample_') to run; default all")
    parser.add_argument("--epochs", type=int, help="override train.epochs of every row")
    parser.add_argument("--eval", type=int, help="override the evaluation samples")
    parser.add_argument("--seeds", type=int, help="override the estimator seeds")
    parser.add_argument("--workers", type=int, help="parallel rows (one thread each on the CPU)")
    parser.add_argument("--runs", type=Path, help="where runs are kept (default runs/density_sampling/<preset>)")
    parser.add_argument(
        "--out", type=Path, help="result file (default benchmarks/results/density_sampling_<preset>[_reduced].json)"
    )
    args = parser.parse_args(argv)
    preset = dict(PRESETS[args.preset])
    for key in ("eval", "seeds", "workers"):
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
    all_rows = [r for group in GROUPS.values() for r in group] + EXTRA
    rows = args.rows or all_rows
    runs = args.runs or Path("runs") / "density_sampling" / (
        args.preset + (f"_epochs{args.epochs}" if args.epochs else "")
    )
    t0 = time.perf_counter()
    print(HEADER, flush=True)
    with ProcessPoolExecutor(max_workers=preset["workers"]) as pool:
        futures = {name: pool.submit(run_row, name, preset, runs, args.epochs) for name in rows}
        results = {name: f.result() for name, f in futures.items()}
        smc = {}
        for target, group in GROUPS.items():
            budgets = [results[r]["train_evaluations"] or 0 for r in group if r in results]
            if budgets:
                smc[target] = pool.submit(run_smc, target, max(budgets), preset["seeds"], preset["eval"])
        smc_rows = {target: f.result() for target, f in smc.items()}
    comparisons = {}
    if {"gmm40_dis", "gmm40_dis_lv"} <= results.keys():
        comparisons["lv_vs_kl"] = {
            loss: {k: results[r]["metrics"][k] for k in ("mode_coverage", "log_Z_error", "elbo")}
            for loss, r in (("kl", "gmm40_dis"), ("log_variance", "gmm40_dis_lv"))
        }
    comparisons["underdamped_steps"] = [
        {
            "overdamped": a,
            "underdamped": b,
            "log_Z_error": [results[a]["metrics"]["log_Z_error"], results[b]["metrics"]["log_Z_error"]],
            "steps": [results[a]["steps"], results[b]["steps"]],
            "evaluations": [results[a]["train_evaluations"], results[b]["train_evaluations"]],
        }
        for a, b in UNDERDAMPED
        if {a, b} <= results.keys()
    ]
    published = {}
    for target, group in GROUPS.items():
        learned = [r for r in group if r in results]
        if target in PUBLISHED and learned:
            ours = min(learned, key=lambda r: results[r]["metrics"]["log_Z_error"][0])
            method, (mean, std) = min(PUBLISHED[target].items(), key=lambda item: item[1][0])
            published[target] = {
                "ours": [ours, results[ours]["metrics"]["log_Z_error"]],
                "published": PUBLISHED[target],
            }
            print(
                f"{target}: best learned log Z error {results[ours]['metrics']['log_Z_error'][0]:.3g} ({ours}); "
                f"published best {mean:g} ± {std:g} ({method}; {PUBLISHED['source']})"
            )
    minutes = (time.perf_counter() - t0) / 60
    cpu_minutes = sum(r["train_cpu_seconds"] for r in results.values()) / 60
    print(
        f"total {minutes:.1f} min wall, {cpu_minutes:.1f} CPU min of training, {preset['workers']} worker(s) of 1 thread"
    )
    reduced = args.epochs is not None or rows != all_rows or args.eval is not None or args.seeds is not None
    out = args.out or RESULTS / f"density_sampling_{args.preset}{'_reduced' if reduced else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        out,
        {
            "preset": args.preset,
            "reduced": reduced,
            "settings": {k: v for k, v in preset.items()},
            "epochs": args.epochs,
            "rows": list(results.values()),
            "smc": list(smc_rows.values()),
            "comparisons": comparisons,
            "published": {"source": PUBLISHED["source"], **published},
            "minutes": minutes,
            "training_cpu_minutes": cpu_minutes,
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
