"""Equal-budget accuracy of zoo models on Darcy 64x64: FNO vs TFNO (rank 0.1) vs local-kernel FNO.

Usage: python benchmarks/zoo_accuracy.py [--epochs 50] [--n-train 1000] [--device auto]
       [--models fno tfno local_fno]

Every model trains on the same data (Darcy recipe, 64x64, seed 0) with the same optimiser,
schedule, batch size and number of epochs, and is tested on 200 samples (seed 1). Prints
relative L2, parameters and wall time per model; writes benchmarks/results/zoo_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODELS = {
    "fno": {"name": "fno", "modes": 12, "width": 32, "padding": 0.125},
    "tfno": {"name": "tfno", "modes": 12, "width": 32, "padding": 0.125, "factorization": "tucker", "rank": 0.1},
    "local_fno": {"name": "local_fno", "modes": 12, "width": 32, "padding": 0.125, "radius": 0.05},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--work", default=str(ROOT / "runs" / "zoo_accuracy"))
    args = parser.parse_args()

    from oplearn.config import validate_config
    from oplearn.evaluate import evaluate_run
    from oplearn.models import count_parameters
    from oplearn.training.run import load_run, train

    work = Path(args.work)
    data = {
        "path": str(work / "darcy_train_64.h5"),
        "generate": {"pde": "darcy", "n": args.n_train + 100, "resolution": 64, "seed": 0},
        "n_train": args.n_train,
        "n_val": 100,
        "batch_size": 20,
        "test": [
            {
                "path": str(work / "darcy_test_64.h5"),
                "generate": {"pde": "darcy", "n": 200, "resolution": 64, "seed": 1},
            }
        ],
    }
    rows = []
    for name in args.models:
        config = validate_config(
            {
                "seed": 0,
                "data": data,
                "model": MODELS[name],
                "train": {"epochs": args.epochs, "lr": 3e-3, "scheduler": "cosine", "device": args.device},
            }
        )
        run_dir = work / name
        shutil.rmtree(run_dir, ignore_errors=True)
        t0 = time.perf_counter()
        train(config, run_dir, progress=False)
        seconds = time.perf_counter() - t0
        (result,) = evaluate_run(run_dir, [data["test"][0]["path"]])
        model, _ = load_run(run_dir)
        spectral = sum(p.numel() for n, p in model.named_parameters() if ".spectral." in n)
        rows.append(
            {
                "model": name,
                "config": MODELS[name],
                "relative_l2": result["metrics"]["relative_l2"],
                "parameters": count_parameters(model),
                "spectral_parameters": spectral,
                "train_seconds": seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["model"] == "fno"), None)
    print(f"Darcy 64x64, {args.n_train} training samples, {args.epochs} epochs each")
    print("| model | relative L2 | vs FNO | parameters | spectral parameters | train s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['relative_l2'] / base['relative_l2']:.3f}" if base else "-"
        print(
            f"| {r['model']} | {r['relative_l2']:.4f} | {ratio} | {r['parameters']:,} | {r['spectral_parameters']:,} | {r['train_seconds']:.0f} |"
        )
    out = ROOT / "benchmarks" / "results" / "zoo_accuracy.json"
    out.write_text(json.dumps({"epochs": args.epochs, "n_train": args.n_train, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
