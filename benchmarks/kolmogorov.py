"""Kolmogorov PDEs learned through SDEs: published errors, the loss comparison, evaluation cost.

Usage: python benchmarks/kolmogorov.py [--preset quick|cpu|gpu] [--seconds S] [--parts published,losses,cost]
       [--threads 1] [--device cpu] [--out benchmarks/results/kolmogorov_<preset>.json]

Three parts:

* ``published``: the four parametric problems of Berner, Dablander, Grohs (NeurIPS 2020) --
  Black-Scholes 1D, basket d = 3, heat paraboloid d = 10, heat Gaussian d = 150 -- trained with
  Feynman-Kac regression and the multilevel MLP, evaluated with the mean relative L1 error
  ``|u - u_hat| / (|u| + 1)`` on held-out points (basket: against Monte-Carlo references, whose own
  error is printed and bounds what can be claimed). Beside each: the published error, the mean
  over 4 seeds of the best validation L1 in the run logs of github.com/juliusberner/deep_kolmogorov,
  ``exp/avg_{bs,basket,heat_paraboloid,heat_gaussian}_*/Trainer/Trainer_{0..3}_*/result.json``
  (last line, ``val.best.L1``), read for this script. ``cpu`` trains each problem for a wall-clock
  budget (``--seconds``) on one thread with the CPU sizes of ``configs/kolmogorov_*.yaml``;
  ``gpu`` uses the reference's sizes (batch, steps per epoch, epochs, step decay of the learning rate,
  multilevel net levels 4 with its factor and batch normalisation).
* ``losses``: FK vs BSDE vs detached BSDE on heat 50D and Black-Scholes 50D (correlated, Monte-Carlo
  reference) at equal optimisation steps, the robust-loss work's setting scaled down: error and
  the variance of the mini-batch gradient (trace of its covariance over 8 independent batches)
  over training.
* ``cost``: the learned solution at 10^5 points (wall time, after a warm-up) against the
  Monte-Carlo reference for the same points (timed on a subset and scaled linearly).

Writes benchmarks/results/kolmogorov_<preset>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from oplearn.kolmogorov import KolmogorovModel, make_loss, make_problem, solution_metrics
from oplearn.models.mlp import MultilevelMLP

ROOT = Path(__file__).resolve().parents[1]

#: Best validation L1 per seed (seeds 0-3), read from the deep_kolmogorov run logs (module docstring).
PUBLISHED = {
    "black_scholes": {
        "seeds": [0.0009979438758455216, 0.0010791513719595968, 0.0011655455998455485, 0.0009633434699693074],
        "log": "exp/avg_bs_2020_06_02_06_21_06",
        "batch": 65536,
        "epochs": 20,
        "steps_per_epoch": 2000,
        "lr": 0.01,
        "decay": 0.25,
        "decay_every": 2,
        "factor": 5,
    },
    "basket": {
        "seeds": [0.0038558607921004295, 0.003943538758903742, 0.0037715667858719826, 0.004095852375030518],
        "log": "exp/avg_basket_2020_06_03_05_27_33",
        "batch": 131072,
        "epochs": 7,
        "steps_per_epoch": 4000,
        "lr": 0.001,
        "decay": 0.4,
        "decay_every": 1,
        "factor": 5,
    },
    "heat_paraboloid": {
        "seeds": [0.005546774786586563, 0.005469886170079311, 0.005552070693423351, 0.005595092410221696],
        "log": "exp/avg_heat_paraboloid_2020_06_02_12_28_23",
        "batch": 131072,
        "epochs": 15,
        "steps_per_epoch": 2000,
        "lr": 0.001,
        "decay": 0.4,
        "decay_every": 2,
        "factor": 4,
    },
    "heat_gaussian": {
        "seeds": [0.0016933132188084224, 0.0016934615342567363, 0.001739335193609198, 0.001671813188586384],
        "log": "exp/avg_heat_gaussian_2020_06_02_07_51_42",
        "batch": 131072,
        "epochs": 15,
        "steps_per_epoch": 2000,
        "lr": 0.001,
        "decay": 0.4,
        "decay_every": 2,
        "factor": 4,
    },
}

#: CPU sizes (those of configs/kolmogorov_<problem>.yaml): batch, lr, multilevel levels and factor.
CPU_SIZES = {
    "black_scholes": (4096, 3e-3, 4, 5),
    "basket": (2048, 1e-3, 3, 2),
    "heat_paraboloid": (1024, 1e-3, 3, 2),
    "heat_gaussian": (1024, 1e-3, 3, 1),
}

PRESETS = {
    "quick": {
        "seconds": 15,
        "eval_points": 4096,
        "basket_points": 16,
        "basket_samples": 4096,
        "compare_steps": 20,
        "compare_batch": 64,
        "compare_path_steps": 10,
        "compare_every": 10,
        "bs_ref_samples": 2048,
    },
    "cpu": {
        "seconds": 180,
        "eval_points": 65536,
        "basket_points": 64,
        "basket_samples": 65536,
        "compare_steps": 300,
        "compare_batch": 256,
        "compare_path_steps": 50,
        "compare_every": 50,
        "bs_ref_samples": 16384,
    },
    "gpu": {
        "seconds": None,
        "eval_points": 131072,
        "basket_points": 1024,
        "basket_samples": 2**20,
        "compare_steps": 30000,
        "compare_batch": 1024,
        "compare_path_steps": 100,
        "compare_every": 1000,
        "bs_ref_samples": 65536,
    },
}


def published_mean(name: str) -> float:
    return statistics.fmean(PUBLISHED[name]["seeds"])


def fit(
    problem,
    model,
    loss,
    batch: int,
    lr: float,
    device,
    seconds: float | None = None,
    steps: int | None = None,
    step_decay: tuple[float, int, int] | None = None,
    weight_decay: float = 0.01,
    seed: int = 0,
    every: int | None = None,
    monitor=None,
) -> dict:
    """AdamW on ``loss`` for a wall-clock budget (cosine decay over the budget) or a number of steps
    (cosine, or ``step_decay = (factor, every_epochs, steps_per_epoch)`` as in the reference work)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    start, step, history = time.perf_counter(), 0, []
    while True:
        elapsed = time.perf_counter() - start
        if (seconds is not None and elapsed >= seconds) or (steps is not None and step >= steps):
            break
        if step_decay is not None:
            factor, every_epochs, per_epoch = step_decay
            scale = factor ** (step // (per_epoch * every_epochs))
        else:
            progress = elapsed / seconds if seconds is not None else step / steps
            scale = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for group in opt.param_groups:
            group["lr"] = lr * scale
        model.train()
        value = loss(problem, model, *problem.sample(batch, gen, device=device), gen)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        step += 1
        if monitor is not None and every and (step % every == 0 or step == 1):
            history.append(
                {"step": step, "seconds": time.perf_counter() - start, "loss": value.item(), **monitor(model, step)}
            )
    return {"steps": step, "seconds": time.perf_counter() - start, "history": history}


def held_out(problem, n: int, samples: int, seed: int = 123):
    gen = torch.Generator().manual_seed(seed)
    t, x, p = problem.sample(n, gen)
    start = time.perf_counter()
    ref = problem.reference(t, x, p, samples, torch.Generator().manual_seed(seed + 1))
    return t, x, p, ref, time.perf_counter() - start


def published_part(preset: dict, name_preset: str, device, seconds: float | None) -> list[dict]:
    rows = []
    for name, pub in PUBLISHED.items():
        problem = make_problem(name)
        batch, lr, levels, factor = CPU_SIZES[name]
        if name_preset == "gpu":
            batch, lr, levels, factor = pub["batch"], pub["lr"], 4, pub["factor"]
        inputs = 1 + problem.dim + problem.n_parameters
        model = KolmogorovModel.for_problem(MultilevelMLP(inputs, levels, factor, "batchnorm", "relu"), problem).to(
            device
        )
        loss = make_loss("fk", 25)
        if name_preset == "gpu":
            run = fit(
                problem,
                model,
                loss,
                batch,
                lr,
                device,
                steps=pub["epochs"] * pub["steps_per_epoch"],
                step_decay=(pub["decay"], pub["decay_every"], pub["steps_per_epoch"]),
            )
        else:
            run = fit(problem, model, loss, batch, lr, device, seconds=seconds)
        n, samples = (
            (preset["basket_points"], preset["basket_samples"]) if name == "basket" else (preset["eval_points"], 1)
        )
        t, x, p, ref, _ref_seconds = held_out(problem, n, samples)
        pred = model.cpu().predict(t, x, p)
        metrics = solution_metrics(pred, ref.values, ref.stderr)
        l1 = metrics.get("relative_l1", metrics.get("relative_l1_bound"))
        row = {
            "problem": name,
            "inputs": inputs,
            "batch": batch,
            "lr": lr,
            "levels": levels,
            "factor": factor,
            "train_steps": run["steps"],
            "train_seconds": round(run["seconds"], 1),
            "eval_points": n,
            "reference": "closed form" if problem.has_exact else f"Monte Carlo, {samples} draws/point",
            "metrics": metrics,
            "published_l1": published_mean(name),
            "published_log": pub["log"],
            "ratio_to_published": l1 / published_mean(name),
            "within_3x": bool(metrics["resolved"]) and l1 <= 3 * published_mean(name),
        }
        rows.append(row)
        claim = f"{l1:.3g}" if "relative_l1" in metrics else f"<= {l1:.3g} (below the reference's resolution)"
        print(
            f"{name:16s} steps {run['steps']:6d} in {run['seconds']:6.0f}s  L1 {claim}  published {published_mean(name):.3g}  "
            f"ratio {row['ratio_to_published']:.1f}  reference L1 {metrics['reference_l1']:.2g}",
            flush=True,
        )
        model.to(device)
    return rows


def gradient_variance(problem, model, loss, batch: int, repeats: int, seed: int) -> float:
    """Trace of the covariance of the mini-batch gradient over ``repeats`` independent batches of ``batch``."""
    gen = torch.Generator().manual_seed(seed)
    grads = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        loss(problem, model, *problem.sample(batch, gen), gen).backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters() if q.grad is not None]))
    model.zero_grad(set_to_none=True)
    g = torch.stack(grads)
    return (g - g.mean(0)).square().sum(1).mean().item() * repeats / (repeats - 1)


def losses_part(preset: dict) -> list[dict]:
    rows = []
    for name in ("heat", "black_scholes_correlated"):
        problem = make_problem(name, dim=50)
        t, x, p, ref, _ = held_out(problem, 256 if not problem.has_exact else 4096, preset["bs_ref_samples"])
        for loss_name in ("fk", "bsde", "detach"):
            torch.manual_seed(0)
            model = KolmogorovModel.for_problem(MultilevelMLP(51, 3, 3, "none", "silu"), problem)
            loss = make_loss(loss_name, preset["compare_path_steps"])

            def monitor(m, step):
                metrics = solution_metrics(m.predict(t, x, p), ref.values, ref.stderr)  # noqa: B023 (called within this iteration)
                m.train()
                return {
                    "relative_l1": metrics.get("relative_l1", metrics.get("relative_l1_bound")),
                    "resolved": metrics["resolved"],
                    "gradient_variance": gradient_variance(
                        problem,  # noqa: B023 (called within this iteration)
                        m,
                        loss,  # noqa: B023 (called within this iteration)
                        max(8, preset["compare_batch"] // 4),
                        8,
                        step,
                    ),
                }

            run = fit(
                problem,
                model,
                loss,
                preset["compare_batch"],
                5e-4,
                torch.device("cpu"),
                steps=preset["compare_steps"],
                weight_decay=0.0,
                every=preset["compare_every"],
                monitor=monitor,
            )
            last = run["history"][-1]
            rows.append(
                {
                    "problem": f"{name} 50D",
                    "loss": loss_name,
                    "steps": run["steps"],
                    "seconds": round(run["seconds"], 1),
                    "path_steps": preset["compare_path_steps"],
                    "batch": preset["compare_batch"],
                    "history": run["history"],
                    "final_relative_l1": last["relative_l1"],
                    "final_gradient_variance": last["gradient_variance"],
                }
            )
            print(
                f"{name:26s} {loss_name:7s} {run['steps']} steps {run['seconds']:6.0f}s  L1 {last['relative_l1']:.3g}  "
                f"grad var {last['gradient_variance']:.3g} (first {run['history'][0]['gradient_variance']:.3g})",
                flush=True,
            )
    return rows


def cost_part(points: int = 100_000, samples: int = 65536, subset: int = 16) -> list[dict]:
    """Wall time of the CPU-size networks at ``points`` points against the Monte-Carlo estimate of the
    same points with ``samples`` draws each (timed on ``subset`` points, scaled linearly)."""
    rows = []
    nets = {name: (make_problem(name), size[2], size[3], "batchnorm", "relu") for name, size in CPU_SIZES.items()}
    nets["black_scholes_correlated"] = (make_problem("black_scholes_correlated", dim=50), 3, 3, "none", "silu")
    for name, (problem, levels, factor, norm, act) in nets.items():
        inputs = 1 + problem.dim + problem.n_parameters
        model = KolmogorovModel.for_problem(MultilevelMLP(inputs, levels, factor, norm, act), problem)
        t, x, p = problem.sample(points, torch.Generator().manual_seed(0))
        model.predict(t[:1000], x[:1000], p[:1000])
        start = time.perf_counter()
        model.predict(t, x, p)
        model_seconds = time.perf_counter() - start
        rep = lambda v: v[:subset].repeat_interleave(samples, 0)
        start = time.perf_counter()
        with torch.no_grad():  # exact draws where the law is known, else the reference's Euler paths
            problem.initial(problem.end_points(rep(t), rep(x), rep(p), problem.reference_steps, None), rep(p)).view(
                subset, samples
            ).mean(1)
        mc = (time.perf_counter() - start) * points / subset
        rows.append(
            {
                "problem": name,
                "points": points,
                "model": f"multilevel levels {levels} factor {factor} ({inputs} inputs)",
                "model_seconds": model_seconds,
                "mc_seconds_scaled": mc,
                "mc_samples_per_point": samples,
            }
        )
        print(
            f"{name:26s} model at {points} points {model_seconds:.3f}s   Monte Carlo ({samples}/point, scaled from {subset} points) "
            f"{mc:.0f}s",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="quick")
    parser.add_argument("--seconds", type=float, default=None, help="training budget per problem (cpu/quick presets)")
    parser.add_argument("--parts", default="published,losses,cost")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    seconds = args.seconds if args.seconds is not None else preset["seconds"]
    parts = args.parts.split(",")
    result = {
        "preset": args.preset,
        "seconds_per_problem": seconds,
        "threads": args.threads,
        "device": args.device,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    if "published" in parts:
        result["published"] = published_part(preset, args.preset, torch.device(args.device), seconds)
    if "losses" in parts:
        result["losses"] = losses_part(preset)
    if "cost" in parts:
        result["cost"] = cost_part()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"kolmogorov_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
