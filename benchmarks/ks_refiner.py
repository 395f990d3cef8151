"""PDE-Refiner against the plain one-step model on Kuramoto-Sivashinsky: correlation time of long rollouts.

Usage: python benchmarks/ks_refiner.py [--preset quick|cpu|gpu] [--epochs N] [--device cpu|cuda]
       [--set KEY=VALUE ...] [--refiner-set KEY=VALUE ...] [--models ks_one_step ks_refiner] [--tag NAME]
       [--out runs/bench_ks_refiner]

Both runs use the shipped configs (configs/ks_one_step.yaml, configs/ks_refiner.yaml) with the same
FNO backbone, size, data, epochs and learning rate; only the task differs (train.task one_step with
the relative L2 loss, or refiner with 3 refinement steps and min noise std 4e-7). Each run is rolled
out with ``oplearn rollout`` (:func:`oplearn.rollout_command.long_rollout`) from the first frame of
every test trajectory, and scored by the correlation time (steps before the sample-mean Pearson
correlation with the solver drops to 0.8 / 0.9 / 0.95, over the test trajectories' length), the
first-step error, and the stability (``status``) and long-term statistics of a rollout 10 times as
long as the training trajectories. Trained runs in ``--out`` are reused (rerunning only rolls out;
a run stopped early is resumed first).

Presets: ``quick`` (a minute: a smoke test), ``cpu`` (a reduced setting for a few CPU minutes: box
L = 64 at 128 nodes, dx = 0.5, frames 0.8 apart, 64 training trajectories of 40 frames, 8 epochs),
``gpu`` (the shipped configs as they are: 256 nodes, dx = 0.25, 512 trajectories of 100 frames,
100 epochs). ``--epochs N`` replaces the preset's epochs (both models), to see how the comparison
moves with the training budget. ``--set`` overrides both configs (e.g. ``train.ema_decay=0.995``),
``--refiner-set`` the refiner's alone (e.g. ``refiner.step_embedding=0``); ``--models`` trains and
rolls out only the models named. Writes benchmarks/results/ks_refiner_<preset>.json (with
``--epochs``: ks_refiner_<preset>_e<N>.json; with ``--tag NAME``: ..._<NAME>.json, and the runs
in ``--out``/<preset>[_e<N>]_<NAME>).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import h5py
import torch

from oplearn.config import load_config
from oplearn.data.files import load_fields
from oplearn.metrics import relative_l2
from oplearn.models import count_parameters
from oplearn.rollout_command import long_rollout
from oplearn.training.run import train_to_end
from oplearn.training.rundir import open_run, read_log
from oplearn.training.tasks import ensure_dataset

ROOT = Path(__file__).resolve().parents[1]
HORIZON_FACTOR = 10

#: preset -> (resolution, train trajectories, train frames, test trajectories, test frames, epochs, model overrides)
PRESETS = {
    "quick": (
        64,
        16,
        20,
        4,
        60,
        3,
        ["model.modes=8", "model.width=16", "model.n_layers=2", "model.projection_channels=32"],
    ),
    "cpu": (
        128,
        64,
        40,
        8,
        200,
        8,
        ["model.modes=16", "model.width=32", "model.n_layers=4", "model.projection_channels=64"],
    ),
    "gpu": (256, 512, 100, 64, 400, 100, []),
}


@torch.no_grad()
def first_step_by_band(run_dir: Path, test_path: Path, resolution: int) -> dict:
    """The first-step error of the run's model on the first 20 frames of each test trajectory, in
    total (mean relative L2) and as the squared error summed over wavenumber bands 0-3, 4-12, 13-24,
    25 to the 2/3 dealiasing cut, and above it, beside the truth's increment power in each band;
    for PDE-Refiner also of step k = 0 alone (before refinement). Seeded refinement noise."""
    model = open_run(run_dir).model.eval()
    trajectories = load_fields(test_path).outputs[:, :21]
    x, y = trajectories[:, :-1].flatten(0, 1), trajectories[:, 1:].flatten(0, 1)
    cut = resolution // 3
    edges = [(0, 4), (4, 13), (13, 25), (25, cut + 1), (cut + 1, resolution // 2 + 1)]

    def bands(e: torch.Tensor) -> list[float]:
        power = torch.fft.rfft(e[:, 0].double(), dim=-1).abs().square().mean(0)
        return [float(power[a:b].sum()) for a, b in edges]

    torch.manual_seed(0)
    pred = model(x)
    out = {
        "bands": [f"{a}-{b - 1}" for a, b in edges],
        "truth_increment_power": bands(y - x),
        "relative_l2": float(relative_l2(pred, y).mean()),
        "error_power": bands(pred - y),
    }
    if hasattr(model, "step_norm"):  # PDE-Refiner: step 0 alone
        d = model(x, torch.zeros_like(x), torch.zeros(len(x), dtype=torch.long))
        step0 = x + model.step_norm.decode(d)
        out.update(step0_relative_l2=float(relative_l2(step0, y).mean()), step0_error_power=bands(step0 - y))
    return out


@torch.no_grad()
def rollout_band_growth(
    run_dir: Path, test_path: Path, resolution: int, at: tuple[int, ...] = (1, 50, 100, 150, 200, 400)
) -> dict:
    """Where a long rollout's energy goes: the power of the rollout (``run_dir/rollout.h5``) in
    wavenumber bands 0-3, 4-12, 13-24 and 25 to the 2/3 dealiasing cut at steps ``at``, mean over
    its trajectories, over the test trajectories' mean power in the band (1: the solver's), and the
    power above the cut (absolute; the data hold none)."""
    bands = ((0, 4), (4, 13), (13, 25), (25, resolution // 3 + 1))
    with h5py.File(run_dir / "rollout.h5", "r") as f:
        rollout = torch.from_numpy(f["rollout"][...]).double()  # (samples, steps, C, n)
    truth = load_fields(test_path).outputs[:, 1:].double()
    reference = torch.fft.rfft(truth[:, :, 0], dim=-1).abs().square().mean(dim=(0, 1))
    power = torch.fft.rfft(rollout[:, :, 0].nan_to_num(), dim=-1).abs().square().mean(0)  # (steps, n // 2 + 1)
    steps = [s for s in at if s <= rollout.shape[1]]
    return {
        "bands": [f"{a}-{b - 1}" for a, b in bands],
        "steps": steps,
        "power_over_solver": [[float(power[s - 1, a:b].sum() / reference[a:b].sum()) for a, b in bands] for s in steps],
        "power_above_cut": [float(power[s - 1, bands[-1][1] :].sum()) for s in steps],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=None, help="replace the preset's epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides of both models")
    parser.add_argument("--refiner-set", nargs="*", default=[], help="config overrides of the refiner")
    parser.add_argument(
        "--models", nargs="+", choices=("ks_one_step", "ks_refiner"), default=["ks_one_step", "ks_refiner"]
    )
    parser.add_argument("--tag", default=None, help="names the variant (output file and run folders)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_ks_refiner"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    resolution, n_train, frames, n_test, test_frames, epochs, model = PRESETS[args.preset]
    tag = args.preset if args.epochs is None else f"{args.preset}_e{args.epochs}"
    tag = tag if args.tag is None else f"{tag}_{args.tag}"
    epochs = epochs if args.epochs is None else args.epochs
    out = Path(args.out) / tag
    data_dir = ROOT / "data" / "bench_ks"
    frame = 0.8

    def recipe(n: int, n_frames: int, seed: int) -> str:
        params = {"t_final": round(frame * n_frames, 6), "n_times": n_frames}
        return json.dumps(
            {"pde": "kuramoto_sivashinsky", "n": n, "resolution": resolution, "seed": seed, "params": params}
        )

    train_path = data_dir / f"train_{resolution}_{n_train}x{frames}.h5"
    test_path = data_dir / f"test_{resolution}_{n_test}x{test_frames}.h5"
    common = [
        f"data.path={train_path}",
        f"data.generate={recipe(n_train + max(2, n_train // 16), frames, 0)}",
        f"data.n_train={n_train}",
        f"data.n_val={max(2, n_train // 16)}",
        f"data.test=[{{path: {test_path}, generate: {recipe(n_test, test_frames, 1)}}}]",
        f"train.epochs={epochs}",
        f"train.device={args.device}",
        f"train.threads={args.threads}",
        *model,
        *args.set,
    ]
    start = time.perf_counter()
    for spec in [
        load_config(ROOT / "configs" / "ks_one_step.yaml", common).data.train_spec,
        *load_config(ROOT / "configs" / "ks_one_step.yaml", common).data.test,
    ]:
        ensure_dataset(spec, progress=False)
    generation = time.perf_counter() - start

    results = {}
    for name in args.models:
        overrides = common + (args.refiner_set if name == "ks_refiner" else [])
        config = load_config(ROOT / "configs" / f"{name}.yaml", overrides)
        run_dir = out / name
        train_to_end(config, run_dir, progress=False)  # resumes a run stopped early; a finished one is reused
        seconds = sum(record["seconds"] for record in read_log(run_dir))  # training wall time, also of a reused run
        steps = max(test_frames, HORIZON_FACTOR * frames)  # stability over 10x the training trajectories
        stats = long_rollout(run_dir, steps, run_dir / "rollout.h5", str(test_path), samples=n_test, device=args.device)
        results[name] = {
            "train_seconds": seconds,
            "parameters": count_parameters(open_run(run_dir).model),  # trainable ones
            "correlation_time": stats["correlation_time"],
            "first_step_relative_l2": stats["relative_l2_per_step"][0],
            "relative_l2_at_10": stats["relative_l2_per_step"][min(9, len(stats["relative_l2_per_step"]) - 1)],
            "status": stats["status"],
            "rollout_steps": steps,
            "blow_up_step": stats["blow_up_step"],
            "seconds_per_step": stats["seconds_per_step"],
            "errors": stats["errors"],
            "first_step_by_band": first_step_by_band(run_dir, test_path, resolution),
            "rollout_band_growth": rollout_band_growth(run_dir, test_path, resolution),
        }
        print(
            f"{name:12s} correlation time {stats['correlation_time']} steps, first-step rel. L2 "
            f"{results[name]['first_step_relative_l2']:.2e}, {stats['status']}, train {seconds:.0f} s",
            flush=True,
        )
    summary = {
        "preset": args.preset,
        "resolution": resolution,
        "length": 64.0,
        "frame_interval": frame,
        "train_trajectories": n_train,
        "train_frames": frames,
        "test_trajectories": n_test,
        "reference_steps": test_frames,
        "epochs": epochs,
        "device": args.device,
        "threads": args.threads,
        "overrides": args.set,
        "refiner_overrides": args.refiner_set,
        "generation_seconds": generation,
        "results": results,
    }
    path = ROOT / "benchmarks" / "results" / f"ks_refiner_{tag}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
