"""Reproduce the FNO paper's Darcy, Burgers and Navier-Stokes (nu = 1e-3) results with oplearn.

Every row generates its data with oplearn's solvers and the standard recipe
(``../shared``-documented: Darcy GRF alpha=2, tau=3 thresholded to 12/3 with f=1; Burgers
nu=0.1 u0 ~ N(0, 625(-Delta+25)^-2) to t=1; Navier-Stokes vorticity, nu=1e-3, T=50, first
10 frames in), trains an FNO and reports the test relative L2 (per sample over all points,
channels and predicted frames, averaged over samples) beside the published figure.

Presets (``--preset``):

* ``gpu``: the papers' sizes: Darcy 85x85 solved at 421x421, 1000 train / 200 test;
  Burgers 256 points solved at 8192, 1000 / 100; Navier-Stokes 64^2 solved at 256^2 with
  dt = 1e-4, 1000 / 200 trajectories; 500 epochs, lr 1e-3 halved every 100 epochs, batch 20.
  Hours on one GPU, dominated by the Navier-Stokes data (~23 s per trajectory on an H100).
* ``cpu``: what fits a 2-core CPU in well under an hour per row: Darcy 32x32 solved on a
  4x finer grid (1000 / 200, 150 epochs, ~13 min on a quiet machine; 61x61 with 100 epochs
  would take ~35 min, the 421x421 solve alone ~2.5 s per sample); Burgers as
  ``gpu`` with 200 epochs; Navier-Stokes with 40 / 10 trajectories solved at 64^2 with
  dt = 2e-3 (the 256^2, dt = 1e-4 solve takes ~43 CPU-minutes per trajectory) and 20 epochs
  of one-step training (1,600 one-step pairs per epoch). Cosine learning-rate decay from 3e-3.
* ``smoke``: seconds per row, to check the pipeline.

Navier-Stokes is trained as the FNO-2D model of the paper: a one-step operator on the last
10 frames, rolled out over the remaining 40 (``train.task=one_step``, ``train.history=10``).

Runs resume where they stopped (data files are resumable, training uses ``--resume``), so an
interrupted reproduction continues with the same command. Writes
``benchmarks/results/reproduce_<preset>.json`` and ``.md``.

    python benchmarks/reproduce.py --preset cpu                 # all rows
    python benchmarks/reproduce.py --preset gpu --device cuda   # the full-size version
    python benchmarks/reproduce.py --preset cpu --rows burgers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oplearn.config import validate_config  # noqa: E402
from oplearn.evaluate import evaluate_run  # noqa: E402
from oplearn.training.run import train_to_end  # noqa: E402
from oplearn.training.tasks import ensure_dataset  # noqa: E402

#: Published test relative L2 (FNO paper, Li et al. 2021) and what it was measured on.
PUBLISHED = {
    "darcy": (0.0108, "FNO, 85x85, 1000 train"),
    "burgers": (0.0149, "FNO, 256 points, 1000 train"),
    "navier_stokes": (0.0128, "FNO-2D, 64^2, nu=1e-3, 1000 train (FNO-3D: 0.0086)"),
}

#: preset -> row -> (data recipe, test recipe, model, training, extra data keys)
PRESETS: dict[str, dict[str, dict]] = {
    "gpu": {
        "darcy": {
            "pde": "darcy",
            "params": {"refine": 5},
            "resolution": 85,
            "n_train": 1000,
            "n_test": 200,
            "model": {"name": "fno", "modes": 12, "width": 32},
            "epochs": 500,
        },
        "burgers": {
            "pde": "burgers",
            "params": {"refine": 32},
            "resolution": 256,
            "n_train": 1000,
            "n_test": 100,
            "model": {"name": "fno", "modes": 16, "width": 64},
            "epochs": 500,
        },
        "navier_stokes": {
            "pde": "navier_stokes",
            "params": {"nu": 1e-3, "refine": 4, "dt": 1e-4},
            "resolution": 64,
            "n_train": 1000,
            "n_test": 200,
            "model": {"name": "fno", "modes": 12, "width": 20},
            "epochs": 500,
            "task": {"task": "one_step", "history": 10},
        },
    },
    "cpu": {
        "darcy": {
            "pde": "darcy",
            "params": {"refine": 4},
            "resolution": 32,
            "n_train": 1000,
            "n_test": 200,
            "model": {"name": "fno", "modes": 12, "width": 32},
            "epochs": 150,
        },
        "burgers": {
            "pde": "burgers",
            "params": {"refine": 32},
            "resolution": 256,
            "n_train": 1000,
            "n_test": 100,
            "model": {"name": "fno", "modes": 16, "width": 64},
            "epochs": 200,
        },
        "navier_stokes": {
            "pde": "navier_stokes",
            "params": {"nu": 1e-3, "refine": 1, "dt": 2e-3},
            "resolution": 64,
            "n_train": 40,
            "n_test": 10,
            "model": {"name": "fno", "modes": 12, "width": 20},
            "epochs": 20,
            "task": {"task": "one_step", "history": 10},
        },
    },
    "smoke": {
        "darcy": {
            "pde": "darcy",
            "params": {},
            "resolution": 16,
            "n_train": 40,
            "n_test": 10,
            "model": {"name": "fno", "modes": 4, "width": 8},
            "epochs": 2,
        },
        "burgers": {
            "pde": "burgers",
            "params": {},
            "resolution": 64,
            "n_train": 40,
            "n_test": 10,
            "model": {"name": "fno", "modes": 8, "width": 8},
            "epochs": 2,
        },
        "navier_stokes": {
            "pde": "navier_stokes",
            "params": {"nu": 1e-3, "refine": 1, "dt": 1e-2, "t_final": 12.0},
            "resolution": 16,
            "n_train": 4,
            "n_test": 2,
            "model": {"name": "fno", "modes": 4, "width": 8},
            "epochs": 2,
            "task": {"task": "one_step", "history": 10},
        },
    },
}


def row_config(preset: str, name: str, device: str, data_dir: Path) -> dict:
    """The run configuration (a ``RunConfig`` dict) of one row."""
    row = PRESETS[preset][name]
    res = row["resolution"]
    scale = {"gpu": {"lr": 1e-3, "scheduler": "step", "step_size": 100, "gamma": 0.5}}.get(
        preset, {"lr": 3e-3, "scheduler": "cosine"}
    )
    return {
        "seed": 0,
        "data": {
            "path": str(data_dir / f"{name}_train_{res}.h5"),
            "generate": {"pde": row["pde"], "n": row["n_train"], "resolution": res, "seed": 0, "params": row["params"]},
            "n_train": row["n_train"],
            "batch_size": 20,
            "test": [
                {
                    "path": str(data_dir / f"{name}_test_{res}.h5"),
                    "generate": {
                        "pde": row["pde"],
                        "n": row["n_test"],
                        "resolution": res,
                        "seed": 1,
                        "params": row["params"],
                    },
                }
            ],
        },
        "model": {**row["model"], "n_layers": 4, "padding": 0.0 if row["pde"] != "darcy" else 0.125},
        "train": {"epochs": row["epochs"], "weight_decay": 1e-4, "device": device, **scale, **row.get("task", {})},
    }


def run_row(preset: str, name: str, device: str, progress: bool) -> dict:
    data_dir = ROOT / "data" / "reproduce" / preset
    run_dir = ROOT / "runs" / "reproduce" / preset / name
    config = validate_config(row_config(preset, name, device, data_dir))
    t0 = time.perf_counter()
    for spec in [config.data.train_spec, *config.data.test]:
        ensure_dataset(spec, progress)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_to_end(config, run_dir, progress)
    t_train = time.perf_counter() - t0
    result = evaluate_run(run_dir, [t.path for t in config.data.test])[0]
    published, setting = PUBLISHED[name]
    return {
        "row": name,
        "relative_l2": result["metrics"]["relative_l2"],
        "published": published,
        "published_setting": setting,
        "resolution": result["resolution"],
        "n_train": config.data.n_train,
        "n_test": result["n"],
        "epochs": config.train.epochs,
        "data_seconds": t_data,
        "train_seconds": t_train,
        "config": config.model_dump(mode="json"),
    }


def table(rows: list[dict], preset: str) -> str:
    lines = [
        f"Preset `{preset}`:",
        "",
        "| problem | oplearn rel. L2 | published | published setting | grid | train / test | epochs | data s | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['relative_l2']:.4f} | {r['published']:.4f} | {r['published_setting']} | "
            f"{r['resolution']} | {r['n_train']} / {r['n_test']} | {r['epochs']} | {r['data_seconds']:.0f} | "
            f"{r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu")
    parser.add_argument("--rows", nargs="+", choices=list(PUBLISHED), default=list(PUBLISHED))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    out = ROOT / "benchmarks" / "results" / f"reproduce_{args.preset}.json"
    rows = []
    for name in args.rows:
        print(f"== {name} ({args.preset})", flush=True)
        rows.append(run_row(args.preset, name, args.device, not args.no_progress))
        print(f"{name}: relative L2 {rows[-1]['relative_l2']:.4f} (published {rows[-1]['published']:.4f})", flush=True)
    previous = {r["row"]: r for r in json.loads(out.read_text())["rows"]} if out.exists() else {}
    merged = {**previous, **{r["row"]: r for r in rows}}
    ordered = [merged[n] for n in PUBLISHED if n in merged]
    record = {"preset": args.preset, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "rows": ordered}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out)
    text = table(ordered, args.preset)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
