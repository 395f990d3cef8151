"""Kolmogorov PDEs learned through SDEs: published errors, the loss comparison, error against
dimension, evaluation cost.

Usage: python benchmarks/kolmogorov.py [--preset quick|cpu|gpu] [--seconds S]
       [--parts published,losses,dimension,cost] [--losses fk,bsde,detach,bsde_grad]
       [--threads 1] [--device cpu|cuda] [--out benchmarks/results/kolmogorov_<preset>[_<parts>].json]
       [--replot RESULTS.json,...]

Four parts:

* ``published``: the four parametric problems of Berner, Dablander, Grohs (NeurIPS 2020) --
  Black-Scholes 1D, basket d = 3, heat paraboloid d = 10, heat Gaussian d = 150 -- trained with
  Feynman-Kac regression and the multilevel MLP, evaluated with the mean relative L1 error
  ``|u - u_hat| / (|u| + 1)`` on held-out points (basket: against Monte-Carlo references, whose own
  error is printed and bounds what can be claimed). Beside each: the published error, the mean
  over 4 seeds of the best validation L1 in the run logs of github.com/juliusberner/deep_kolmogorov,
  ``exp/avg_{bs,basket,heat_paraboloid,heat_gaussian}_*/Trainer/Trainer_{0..3}_*/result.json``
  (last line, ``val.best.L1``), read for this script. ``cpu`` trains each problem for a wall-clock
  budget (``--seconds``, default 1200: 20 minutes per problem) on one thread with the CPU sizes of
  ``configs/kolmogorov_*.yaml``; ``gpu`` (``--device cuda``) uses the reference's sizes (batch,
  steps per epoch, epochs, step decay of the learning rate, multilevel net levels 4 with its factor
  and batch normalisation).
* ``losses``: the losses of ``--losses`` (default all: FK, BSDE, detached BSDE, BSDE with a learned
  gradient) on heat 50D and Black-Scholes 50D (correlated, Monte-Carlo reference) at equal
  optimisation steps, the robust-loss work's setting scaled down: error and the variance of the
  mini-batch gradient in the solution network's parameters (trace of its covariance over 8
  independent batches) over training; figure ``kolmogorov_<preset>_losses.png``.
* ``dimension``: error against dimension -- Feynman-Kac regression (exact draws) at a fixed number
  of steps on the isotropic heat equation and the parametric heat equation with Gaussian initial
  condition at d = 1 ... 150 (``gpu``: ... 300); figure ``kolmogorov_<preset>_dimension.png``.
* ``cost``: the learned solution at 10^5 points (wall and process CPU time, after a warm-up) against
  the Monte-Carlo reference for the same points (timed on a subset and scaled linearly); and the
  time of one training step of each loss at the loss comparison's sizes.

Writes benchmarks/results/kolmogorov_<preset>.json, or ``kolmogorov_<preset>_<parts>.json`` for a
subset of the parts (or ``--out``), and the figures in the same folder;
``--replot a.json,b.json`` redraws the figures from saved results (e.g. runs of different parts).
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

from oplearn.kolmogorov import LOSSES, KolmogorovModel, make_loss, make_problem, solution_metrics
from oplearn.models.mlp import MultilevelMLP
from oplearn.training.rundir import write_json

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("published", "losses", "dimension", "cost")

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
        "dims": [1, 5, 10, 50, 100, 150],
        "dim_steps": 100,
        "dim_batch": 256,
    },
    "cpu": {
        "seconds": 1200,
        "eval_points": 65536,
        "basket_points": 64,
        "basket_samples": 65536,
        "compare_steps": 300,
        "compare_batch": 256,
        "compare_path_steps": 50,
        "compare_every": 50,
        "bs_ref_samples": 16384,
        "dims": [1, 5, 10, 50, 100, 150],
        "dim_steps": 1000,
        "dim_batch": 512,
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
        "dims": [1, 5, 10, 50, 100, 150, 300],
        "dim_steps": 30000,
        "dim_batch": 8192,
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


def gradient_variance(problem, model, loss, batch: int, repeats: int, seed: int, device) -> float:
    """Trace of the covariance of the mini-batch gradient in the solution network's parameters
    (``model.net``, so that losses with a gradient network compare on the same parameters) over
    ``repeats`` independent batches of ``batch``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    grads = []
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        loss(problem, model, *problem.sample(batch, gen, device=device), gen).backward()
        grads.append(torch.cat([q.grad.flatten() for q in model.net.parameters() if q.grad is not None]))
    model.zero_grad(set_to_none=True)
    g = torch.stack(grads)
    return (g - g.mean(0)).square().sum(1).mean().item() * repeats / (repeats - 1)


def compare_model(problem, loss) -> KolmogorovModel:
    """The robust-loss work's net (multilevel, levels 3, factor 3, SiLU, no normalisation), with a
    gradient network of the same shape for losses that learn one."""
    inputs = 1 + problem.dim + problem.n_parameters
    grad_net = MultilevelMLP(inputs, 3, 3, "none", "silu", out_features=problem.dim) if loss.learns_gradient else None
    return KolmogorovModel.for_problem(MultilevelMLP(inputs, 3, 3, "none", "silu"), problem, grad_net)


def losses_part(preset: dict, loss_names: list[str], device) -> list[dict]:
    rows = []
    for name in ("heat", "black_scholes_correlated"):
        problem = make_problem(name, dim=50)
        t, x, p, ref, _ = held_out(problem, 256 if not problem.has_exact else 4096, preset["bs_ref_samples"])
        for loss_name in loss_names:
            loss = make_loss(loss_name, preset["compare_path_steps"])
            torch.manual_seed(0)
            model = compare_model(problem, loss).to(device)

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
                        device,
                    ),
                }

            run = fit(
                problem,
                model,
                loss,
                preset["compare_batch"],
                5e-4,
                device,
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
                f"{name:26s} {loss_name:9s} {run['steps']} steps {run['seconds']:6.0f}s  L1 {last['relative_l1']:.3g}  "
                f"grad var {last['gradient_variance']:.3g} (first {run['history'][0]['gradient_variance']:.3g})",
                flush=True,
            )
    return rows


def plot_losses(rows: list[dict], path: Path) -> None:
    """Error and gradient variance against optimisation steps, one panel pair per problem."""
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(r["problem"] for r in rows))
    fig, axes = plt.subplots(2, len(problems), figsize=(5 * len(problems), 6.4), squeeze=False, sharex=True)
    for col, problem in enumerate(problems):
        for r in (r for r in rows if r["problem"] == problem):
            steps = [h["step"] for h in r["history"]]
            axes[0, col].plot(steps, [h["relative_l1"] for h in r["history"]], marker=".", label=r["loss"])
            axes[1, col].plot(steps, [h["gradient_variance"] for h in r["history"]], marker=".", label=r["loss"])
        axes[0, col].set_title(problem, fontsize=10)
        axes[0, col].set_ylabel("mean relative L1")
        axes[1, col].set_ylabel("gradient variance (trace)")
        axes[1, col].set_xlabel("optimisation step")
        for ax in axes[:, col]:
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    save_figure(fig, path)


def dimension_part(preset: dict, device) -> list[dict]:
    """Error against dimension: Feynman-Kac regression (exact draws) at a fixed number of steps on the
    isotropic heat equation (paraboloid, no parameters) and the heat equation with Gaussian initial
    condition parametric in its diffusion, at each dimension of ``preset["dims"]``."""
    rows = []
    for name in ("heat", "heat_gaussian"):
        for dim in preset["dims"]:
            problem = make_problem(name, dim=dim)
            inputs = 1 + problem.dim + problem.n_parameters
            torch.manual_seed(0)
            net = MultilevelMLP(inputs, 3, max(1, 64 // inputs), "batchnorm", "relu")
            model = KolmogorovModel.for_problem(net, problem).to(device)
            run = fit(problem, model, make_loss("fk", 1), preset["dim_batch"], 1e-3, device, steps=preset["dim_steps"])
            t, x, p, ref, _ = held_out(problem, preset["eval_points"], 1)
            metrics = solution_metrics(model.cpu().predict(t, x, p), ref.values, ref.stderr)
            rows.append(
                {
                    "problem": name,
                    "dim": dim,
                    "inputs": inputs,
                    "width": net.levels[0].inp.out_features,
                    "steps": run["steps"],
                    "batch": preset["dim_batch"],
                    "seconds": round(run["seconds"], 1),
                    "relative_l1": metrics["relative_l1"],
                    "relative_l2": metrics["relative_l2"],
                }
            )
            print(
                f"{name:14s} d = {dim:4d}  {run['steps']} steps {run['seconds']:5.0f}s  L1 {metrics['relative_l1']:.3g}  "
                f"L2 {metrics['relative_l2']:.3g}",
                flush=True,
            )
    return rows


def plot_dimension(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in dict.fromkeys(r["problem"] for r in rows):
        sel = [r for r in rows if r["problem"] == name]
        ax.plot([r["dim"] for r in sel], [r["relative_l1"] for r in sel], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel("mean relative L1 (held-out)")
    ax.set_title(f"error against dimension at {rows[0]['steps']} steps, batch {rows[0]['batch']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (a temporary file renamed into place)."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def timed(fn, *args) -> tuple[float, float]:
    """Wall and process CPU seconds of ``fn(*args)`` (on a machine shared with other jobs the wall time
    includes waiting for a core; the CPU time is what the call itself used)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def cost_part(points: int = 100_000, samples: int = 65536, subset: int = 16) -> list[dict]:
    """Wall time of the CPU-size networks at ``points`` points (best of 3, :meth:`KolmogorovModel.predict`
    with its default CPU batch, and in batches of 65536 for comparison) against the Monte-Carlo estimate of the same points with ``samples``
    draws each (timed on ``subset`` points, scaled linearly)."""
    rows = []
    nets = {name: (make_problem(name), size[2], size[3], "batchnorm", "relu") for name, size in CPU_SIZES.items()}
    nets["black_scholes_correlated"] = (make_problem("black_scholes_correlated", dim=50), 3, 3, "none", "silu")
    for name, (problem, levels, factor, norm, act) in nets.items():
        inputs = 1 + problem.dim + problem.n_parameters
        model = KolmogorovModel.for_problem(MultilevelMLP(inputs, levels, factor, norm, act), problem)
        t, x, p = problem.sample(points, torch.Generator().manual_seed(0))
        model.predict(t[:1000], x[:1000], p[:1000])
        model_seconds, model_cpu_seconds = min(timed(model.predict, t, x, p) for _ in range(3))
        large_batch_seconds, large_batch_cpu_seconds = min(timed(model.predict, t, x, p, 65536) for _ in range(3))
        rep = lambda v: v[:subset].repeat_interleave(samples, 0)

        @torch.no_grad()
        def monte_carlo():  # exact draws where the law is known, else the reference's Euler paths
            ends = problem.end_points(rep(t), rep(x), rep(p), problem.reference_steps, None)  # noqa: B023
            problem.initial(ends, rep(p)).view(subset, samples).mean(1)  # noqa: B023

        mc, mc_cpu = (seconds * points / subset for seconds in timed(monte_carlo))
        rows.append(
            {
                "problem": name,
                "points": points,
                "model": f"multilevel levels {levels} factor {factor} ({inputs} inputs)",
                "model_seconds": model_seconds,
                "model_cpu_seconds": model_cpu_seconds,
                "model_seconds_batch_65536": large_batch_seconds,
                "model_cpu_seconds_batch_65536": large_batch_cpu_seconds,
                "mc_seconds_scaled": mc,
                "mc_cpu_seconds_scaled": mc_cpu,
                "mc_samples_per_point": samples,
            }
        )
        print(
            f"{name:26s} model at {points} points {model_seconds:.3f}s (process CPU {model_cpu_seconds:.3f}s; in batches of 65536 "
            f"{large_batch_seconds:.3f}s, CPU {large_batch_cpu_seconds:.3f}s)   Monte Carlo ({samples}/point, scaled from {subset} points) "
            f"{mc:.0f}s (CPU {mc_cpu:.0f}s)",
            flush=True,
        )
    return rows


def replot(files: list[Path], folder: Path, preset: str) -> None:
    """Redraw ``kolmogorov_<preset>_{losses,dimension}.png`` in ``folder`` from saved results."""
    rows: dict[str, dict] = {"losses": {}, "dimension": {}}
    for path in files:
        result = json.loads(path.read_text())
        for r in result.get("losses", []):
            rows["losses"][r["problem"], r["loss"]] = r
        for r in result.get("dimension", []):
            rows["dimension"][r["problem"], r["dim"]] = r
    if rows["losses"]:
        plot_losses(list(rows["losses"].values()), folder / f"kolmogorov_{preset}_losses.png")
    if rows["dimension"]:
        plot_dimension(list(rows["dimension"].values()), folder / f"kolmogorov_{preset}_dimension.png")
    print(f"redrew the figures of {', '.join(k for k, v in rows.items() if v)} in {folder}")


def step_cost_part(preset: dict, loss_names: list[str], device, repeats: int = 3) -> list[dict]:
    """Wall and process CPU seconds of one optimisation step (loss and backward pass) of each loss at the
    loss comparison's sizes, best of ``repeats`` after a warm-up step."""
    rows = []
    for name in ("heat", "black_scholes_correlated"):
        problem = make_problem(name, dim=50)
        for loss_name in loss_names:
            loss = make_loss(loss_name, preset["compare_path_steps"])
            torch.manual_seed(0)
            model = compare_model(problem, loss).to(device)
            gen = torch.Generator(device=device).manual_seed(0)

            def step():
                model.zero_grad(set_to_none=True)  # noqa: B023 (called within this iteration)
                points = problem.sample(preset["compare_batch"], gen, device=device)  # noqa: B023
                loss(problem, model, *points, gen).backward()  # noqa: B023

            step()
            wall, cpu = min(timed(step) for _ in range(repeats))
            rows.append({"problem": f"{name} 50D", "loss": loss_name, "step_seconds": wall, "step_cpu_seconds": cpu})
            print(f"{name:26s} {loss_name:9s} one step {wall:.3f}s (process CPU {cpu:.3f}s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="quick")
    parser.add_argument("--seconds", type=float, default=None, help="training budget per problem (cpu/quick presets)")
    parser.add_argument("--parts", default="published,losses,dimension,cost")
    parser.add_argument("--losses", default=",".join(LOSSES), help="losses compared in the 'losses' part")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (training; references stay on the CPU)")
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--replot",
        default=None,
        help="comma-separated result files: redraw the preset's figures from their 'losses' and 'dimension' rows "
        "(a later file's row replaces an earlier one for the same problem and loss or dimension), train nothing",
    )
    args = parser.parse_args()
    if args.replot:
        replot([Path(f) for f in args.replot.split(",")], ROOT / "benchmarks" / "results", args.preset)
        return
    parts = args.parts.split(",")
    loss_names = args.losses.split(",")
    for value, allowed, what in ((parts, PARTS, "--parts"), (loss_names, LOSSES, "--losses")):
        if unknown := sorted(set(value) - set(allowed)):
            parser.error(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available; use --device cpu")
    torch.set_num_threads(args.threads)
    preset = PRESETS[args.preset]
    seconds = args.seconds if args.seconds is not None else preset["seconds"]
    result = {
        "preset": args.preset,
        "seconds_per_problem": seconds,
        "threads": args.threads,
        "device": args.device,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    # a subset of the parts gets its own file, so it never replaces the full run's results
    suffix = "" if set(parts) == set(PARTS) else "_" + "_".join(p for p in PARTS if p in parts)
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"kolmogorov_{args.preset}{suffix}.json"
    if "published" in parts:
        result["published"] = published_part(preset, args.preset, device, seconds)
    if "losses" in parts:
        result["losses"] = losses_part(preset, loss_names, device)
        plot_losses(result["losses"], out.parent / f"kolmogorov_{args.preset}_losses.png")
    if "dimension" in parts:
        result["dimension"] = dimension_part(preset, device)
        plot_dimension(result["dimension"], out.parent / f"kolmogorov_{args.preset}_dimension.png")
    if "cost" in parts:
        result["cost"] = cost_part()
        result["step_cost"] = step_cost_part(preset, loss_names, device)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
