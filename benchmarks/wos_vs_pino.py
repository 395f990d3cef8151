"""WoS supervision vs a physics-informed residual loss on the Poisson family, at equal optimiser steps.

Both train the same operator (the FNO of ``configs/poisson_wos.yaml`` on the 33x33 grid of the
unit square, inputs f, g and the signed distance) on the same problems of
:class:`oplearn.wos.problems.PoissonFamily` (random sources, boundary data, star-shaped
domains), with the same optimiser, schedule, batch and number of steps:

(a) ``wos``: :class:`oplearn.wos.training.WoSTask` - relative L2 misfit to the running-mean
    walk-on-spheres estimates at 64 points per problem (4 new walks per point per epoch; the
    walks are part of the timed step).
(b) ``pino``: the relative norm of the 5-point residual ``Lap_h u - f``
    (:meth:`oplearn.pdes.Poisson.residual`) at the grid nodes whose stencil lies in the domain,
    plus the relative misfit ``u - g`` at the nodes outside the domain (the boundary data
    extended along rays): the physics-informed loss of a masked grid, no solver data.

Reported: the relative L2 error against the Shortley-Weller reference at the grid nodes
inside the domains of 16 held-out problems, the wall and CPU time per optimiser step, and the
peak resident memory during training (each run in its own process, the kernel's peak mark
reset after the common set-up), and the ratios pino / wos.

    python benchmarks/wos_vs_pino.py            # about 2.5 CPU-minutes per method on one thread
    python benchmarks/wos_vs_pino.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "wos_vs_pino.json"


def config(args):
    from oplearn.config import validate_config

    return validate_config(
        {
            "seed": 0,
            "data": {"batch_size": args.batch},
            "wos": {"n_train": args.n_train, "n_val": 16, "resolution": 33, "points": 64, "walks": 4, "epsilon": 1e-3},
            "model": {"name": "fno", "modes": 12, "width": 32, "n_layers": 4, "padding": 0.125},
            "train": {"task": "wos", "epochs": args.epochs, "lr": 3e-3, "threads": 1, "device": "cpu"},
        }
    )


def pino_loss(pred: torch.Tensor, inputs: torch.Tensor, grid) -> torch.Tensor:
    """Relative masked residual plus relative exterior boundary misfit, averaged over the batch.

    Shapes: ``pred (batch, 1, n, n)``, ``inputs (batch, 3, n, n)`` (f, g, sdf) -> scalar.
    """
    from oplearn.pdes import Poisson

    f, g, sdf = inputs[:, 0:1], inputs[:, 1:2], inputs[:, 2:3]
    inside = sdf < 0
    c = inside[..., 1:-1, 1:-1]
    stencil = (
        c & inside[..., :-2, 1:-1] & inside[..., 2:, 1:-1] & inside[..., 1:-1, :-2] & inside[..., 1:-1, 2:]
    ).float()
    residual = Poisson().residual(pred, f, grid) * stencil
    interior = residual.flatten(1).norm(dim=1) / (f[..., 1:-1, 1:-1] * stencil).flatten(1).norm(dim=1)
    outside = (~inside).float()
    boundary = ((pred - g) * outside).flatten(1).norm(dim=1) / (g * outside).flatten(1).norm(dim=1)
    return (interior + boundary).mean()


def rss_mb(field: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak since the last :func:`reset_peak`) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024


def resource_peak() -> float:
    """The peak RSS of the whole process (setup included), in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def child(method: str, args) -> dict:
    """Train one method in this process and return its figures."""
    from oplearn.seeding import generator
    from oplearn.wos.training import WoSTask

    torch.set_num_threads(1)
    cfg = config(args)
    task = WoSTask(cfg, progress=False)
    torch.manual_seed(cfg.seed)
    model = task.build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.train.epochs)
    autocast = torch.autocast("cpu", enabled=False)
    rss_setup = rss_mb("VmRSS")
    reset_peak()
    steps, wall, cpu = 0, 0.0, 0.0
    curve = []
    for epoch in range(cfg.train.epochs):
        w0, c0 = time.perf_counter(), time.process_time()
        if method == "wos":
            task.start_epoch(epoch)
        model.train()
        order = torch.randperm(len(task), generator=generator(cfg.seed, 1, epoch))
        for i in range(0, len(task), args.batch):
            idx = order[i : i + args.batch]
            if method == "wos":
                loss = task.loss(model, model, idx, torch.device("cpu"), autocast)
            else:
                loss = pino_loss(model(task.inputs[idx]), task.inputs[idx], task.grid)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        scheduler.step()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        if (epoch + 1) % max(1, cfg.train.epochs // 5) == 0 or epoch + 1 == cfg.train.epochs:
            curve.append(
                {"step": steps, "val_relative_l2": task.validate(model, 16, torch.device("cpu"))["val_relative_l2"]}
            )
    peak = rss_mb("VmHWM")
    return {
        "method": method,
        "steps": steps,
        "val_relative_l2": curve[-1]["val_relative_l2"],
        "curve": curve,
        "wall_s_per_step": wall / steps,
        "cpu_s_per_step": cpu / steps,
        "peak_rss_mb": peak,
        "rss_after_setup_mb": rss_setup,
        "training_rss_increase_mb": peak - rss_setup,
        "process_peak_rss_mb": resource_peak(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--n-train", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 epochs of 20 problems (smoke run, not written)")
    parser.add_argument("--child", choices=("wos", "pino"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.n_train = 3, 20
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    runs = {}
    for method in ("wos", "pino"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            method,
            "--epochs",
            str(args.epochs),
            "--n-train",
            str(args.n_train),
            "--batch",
            str(args.batch),
        ]
        out = subprocess.run(
            cmd, check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        runs[method] = json.loads(out.stdout.strip().splitlines()[-1])
        r = runs[method]
        print(
            f"{method:>5}: {r['steps']} steps, relative L2 {r['val_relative_l2']:.4f}, {1e3 * r['wall_s_per_step']:.1f} ms/step wall, "
            f"{1e3 * r['cpu_s_per_step']:.1f} ms/step CPU, peak RSS {r['peak_rss_mb']:.0f} MB "
            f"(+{r['training_rss_increase_mb']:.0f} MB in training)"
        )
    w, p = runs["wos"], runs["pino"]
    ratios = {
        "error_pino_over_wos": p["val_relative_l2"] / w["val_relative_l2"],
        "wall_time_pino_over_wos": p["wall_s_per_step"] / w["wall_s_per_step"],
        "cpu_time_pino_over_wos": p["cpu_s_per_step"] / w["cpu_s_per_step"],
        "peak_rss_pino_over_wos": p["peak_rss_mb"] / w["peak_rss_mb"],
        "training_rss_increase_pino_over_wos": p["training_rss_increase_mb"] / w["training_rss_increase_mb"],
    }
    print("ratios pino / wos: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    if args.quick:
        return
    result = {
        "settings": vars(args)
        | {
            "resolution": 33,
            "points": 64,
            "walks_per_epoch": 4,
            "threads": 1,
            "torch": torch.__version__,
            "cpu_count": os.cpu_count(),
        },
        "runs": runs,
        "ratios": ratios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, RESULTS)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
