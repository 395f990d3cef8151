"""Coarse graining of Kolmogorov flow: long-term statistics error and speed of learned and classical coarse models.

Usage: python benchmarks/kolmogorov_coarse.py [--preset quick|cpu|gpu] [--device cpu|cuda] [--out runs/bench_kf]
[--only VARIANT ...] [--seeds S ...] [--n-fine N] [--fine-epochs E] [--fine-burn-in T] [--n-reference N]
[--reference-frames F] [--skip F] [--tag TAG]

All models live on the same coarse grid (``resolution``) and are scored against the *resolved*
solver (the same equation solved ``refine`` times finer, stored on the coarse grid):

* ``coarse_solver``: the pseudo-spectral solver run on the coarse grid (no closure);
* ``les``: the same with the Smagorinsky eddy viscosity (C_s = 0.17), the classical closure;
* ``operator_data``: a one-step FNO (configs/kolmogorov_flow_coarse.yaml) trained on coarse-solver
  trajectories only (coarse_graining.pde_weight=0, one sub-frame);
* ``operator_pde``: the same plus the PDE residual on 8 sub-frames per frame interval on the 2x
  finer grid (pde_weight=0.1, sub_frames=8);
* ``operator_pde_one_frame``: pde_weight=0.1 on one sub-frame (the residual of the whole frame
  interval, inconsistent for the exact solution);
* ``operator_resolved``: the data-only model trained on the ``n_fine`` resolved trajectories alone;
* ``operator_data_ft``, ``operator_pde_ft``: the first two fine-tuned (multi-fidelity) on ``n_fine``
  resolved trajectories for ``fine_epochs`` epochs at a tenth of the learning rate, with its own loss.

Trained runs in ``--out`` are reused; ``--only`` trains and scores a subset of the learned models
(a fine-tuned one needs its starting run), keeping the other models' results in the JSON file.
``--seeds`` are the training seeds (the data's seeds are fixed): each learned model is trained
once per seed, and its entry holds each seed's results (``seeds``) and the mean, minimum and
maximum of each error over them (``errors_mean``, ``errors_min``, ``errors_max``). ``--n-fine``,
``--fine-epochs``, ``--n-reference``, ``--reference-frames`` and ``--fine-burn-in`` (the burn-in
of the resolved training trajectories) replace the preset's values. Runs live in
``OUT/PRESET/seed<S>/<variant>``, with ``_n<n_fine>`` (and ``_b<fine_burn_in>`` where it differs
from ``burn_in``) appended for the models that learn from resolved data and ``_e<fine_epochs>``
for the fine-tuned ones, so that a setting reuses the runs it shares with another (the
reference only scores, it does not train).

Statistics (:mod:`oplearn.rollout_stats`): relative errors of the mean kinetic energy, TKE and
dissipation, the mean log-spectrum error, the PDF distance and the auto-correlation error, each
over the same time window for the reference and the models: the reference's frames after the
first (the rollouts' start) and ``--skip`` more (0 by default), the rollouts' steps up to the
reference's length. ``energy_by_window`` of the resolved solver is its mean energy over
consecutive windows of ``train_frames`` frames: whether the reference is stationary.
``halves_errors`` of the resolved solver are the errors of the first half of the reference
trajectories against the second half: the noise floor of a reference half as large. The learned
models are rolled out for ``horizon_factor`` (10) times the length of their training
trajectories from the first frames of the resolved test trajectories; ``status`` says whether
they stayed bounded (``ok``), lost their energy (``damped``) or blew up (``exploding``). Speed:
wall seconds per frame interval of one trajectory, best of 3 runs of 4 frames from the same 2
resolved frames (a batch of 2 trajectories, on the solver's own grid for the solvers); the
speed-up is the resolved solver's time over each model's.

Presets: ``quick`` (smoke test), ``cpu`` (Re = 100, 16x16 coarse grid, resolved on 64x64,
frames 0.5 apart after a burn-in of 20, 32 coarse training trajectories of 40 frames, 16
resolved ones for fine-tuning after a burn-in of 80 (the resolved flow's energy grows until
about t = 80), 8 reference trajectories of 400 frames (the rollouts' length, so that both cover
the same time window); 1 to 10 minutes on one core, depending on its load, for the data-only
model, 3 times that for the PDE one), ``gpu`` (more and longer trajectories, Re = 500 on 64x64
resolved on 256x256).
Writes benchmarks/results/kolmogorov_coarse_<preset>.json, or ``..._<preset>_<tag>.json`` with ``--tag``.
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
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.models.uno import fourier_resample
from oplearn.rollout_command import long_rollout
from oplearn.rollout_stats import compare_statistics, diagnose, energy, long_run_statistics
from oplearn.training.rollout import rollout
from oplearn.training.run import train_to_end
from oplearn.training.rundir import open_run, read_log, write_json

ROOT = Path(__file__).resolve().parents[1]

#: preset -> settings
PRESETS = {
    "quick": dict(
        n_fine=2,
        fine_epochs=2,
        fine_burn_in=5.0,
        re=100.0,
        resolution=16,
        refine=2,
        frame=0.5,
        burn_in=5.0,
        n_train=8,
        train_frames=10,
        n_reference=2,
        reference_frames=20,
        epochs=2,
        dt=1e-2,
        modes=4,
        width=8,
    ),
    "cpu": dict(
        n_fine=16,
        fine_epochs=30,
        fine_burn_in=80.0,
        re=100.0,
        resolution=16,
        refine=4,
        frame=0.5,
        burn_in=20.0,
        n_train=32,
        train_frames=40,
        n_reference=8,
        reference_frames=400,
        epochs=30,
        dt=5e-3,
        modes=6,
        width=24,
    ),
    "gpu": dict(
        n_fine=16,
        fine_epochs=20,
        fine_burn_in=50.0,
        re=500.0,
        resolution=64,
        refine=4,
        frame=0.25,
        burn_in=50.0,
        n_train=128,
        train_frames=80,
        n_reference=8,
        reference_frames=400,
        epochs=100,
        dt=1e-3,
        modes=24,
        width=64,
    ),
}
HORIZON_FACTOR = 10
#: Learning rate of the fine-tuning runs (a tenth of the first training's).
FINE_LR = 1e-4
#: The learned models: coarse_graining settings, the data they learn from (``coarse``: the
#: ``n_train`` coarse-solver trajectories; ``resolved``: the ``n_fine`` resolved ones) and the run a
#: fine-tuned model starts from (it then trains for ``fine_epochs`` at ``FINE_LR``).
VARIANTS = {
    "operator_data": dict(pde_weight=0.0, sub_frames=1, data="coarse"),
    "operator_pde": dict(pde_weight=0.1, sub_frames=8, data="coarse"),
    "operator_pde_one_frame": dict(pde_weight=0.1, sub_frames=1, data="coarse"),
    "operator_resolved": dict(pde_weight=0.0, sub_frames=1, data="resolved"),
    "operator_data_ft": dict(pde_weight=0.0, sub_frames=1, data="resolved", init_from="operator_data"),
    "operator_pde_ft": dict(pde_weight=0.1, sub_frames=8, data="resolved", init_from="operator_pde"),
}
SMAGORINSKY = 0.17
#: Frames, repeats and trajectories of the speed measurements (the best of the repeats counts).
TIMED_FRAMES, REPEATS, TIMED_BATCH = 4, 3, 2


def seconds_per_frame(advance, batch: int) -> float:
    """Best-of-``REPEATS`` wall seconds per frame interval per trajectory of ``advance()``, which
    advances ``batch`` trajectories by ``TIMED_FRAMES`` frames."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        advance()
        best = min(best, time.perf_counter() - start)
    return best / (TIMED_FRAMES * batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench_kf"))
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="train and score only these learned models")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds of the learned models")
    for key in ("n_fine", "fine_epochs", "n_reference", "reference_frames"):
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key, help="replaces the preset's value")
    parser.add_argument("--fine-burn-in", type=float, help="replaces the preset's value")
    parser.add_argument("--skip", type=int, default=0, help="frames left out of the statistics after the first")
    parser.add_argument("--tag", help="writes kolmogorov_coarse_<preset>_<tag>.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    p = dict(PRESETS[args.preset])
    overridable = ("n_fine", "fine_epochs", "n_reference", "reference_frames", "fine_burn_in")
    p.update({k: getattr(args, k) for k in overridable if getattr(args, k) is not None})
    # the resolved training data's name and runs: their burn-in where it differs from the others'
    burn_tag = f"_b{p['fine_burn_in']:g}" if p["fine_burn_in"] != p["burn_in"] else ""
    out = Path(args.out) / args.preset
    out.mkdir(parents=True, exist_ok=True)
    viscosity = 1.0 / p["re"]

    def pde(n_frames: int, refine: int = 1, smagorinsky: float = 0.0, burn_in: float = p["burn_in"]):
        return make_pde(
            "kolmogorov_flow",
            {
                "re": p["re"],
                "t_final": p["frame"] * n_frames,
                "n_times": n_frames,
                "burn_in": burn_in,
                "dt": p["dt"],
                "refine": refine,
                "smagorinsky": smagorinsky,
            },
        )

    start_frames = None  # the resolved file's first frames, once it exists

    def solve(name: str, maker, n: int, seed: int) -> tuple[Path, float]:
        """Generate (or reuse) a file; returns it and the solver's wall seconds per frame interval per
        trajectory (:func:`seconds_per_frame` from the resolved file's first frames, at the solver's grid)."""
        path = out / f"{name}.h5"
        if not path.exists():
            generate_dataset(maker, n, p["resolution"], path, seed=seed, progress=False)
        w0 = start_frames if start_frames is not None else load_fields(path).inputs[:TIMED_BATCH]
        timed = make_pde(
            "kolmogorov_flow",
            {**maker.params(), "t_final": p["frame"] * TIMED_FRAMES, "n_times": TIMED_FRAMES, "burn_in": 0.0},
        )
        fine = timed.grid(p["resolution"]).refine(timed.refine)
        w0 = fourier_resample(w0.double(), fine.shape)
        return path, seconds_per_frame(lambda: timed.solve(w0, fine), TIMED_BATCH)

    frames = p["reference_frames"]
    size = f"{p['n_reference']}x{frames}"
    reference, resolved_time = solve(f"resolved_{size}", pde(frames, p["refine"]), p["n_reference"], 1)
    start_frames = load_fields(reference).inputs[:TIMED_BATCH]
    grid_data = load_fields(reference)
    grid = grid_data.grid
    ref_full = torch.cat([grid_data.inputs[:, None], grid_data.outputs], 1).double()
    ref_traj = ref_full[:, 1 + args.skip :]  # the rollouts' window: frame k + 1 is their step k
    ref_stats = long_run_statistics(ref_traj, grid, vorticity=True, viscosity=viscosity)
    energies = energy(ref_full[:, 1:], grid, vorticity=True)
    half = p["n_reference"] // 2
    halves = [
        long_run_statistics(t, grid, vorticity=True, viscosity=viscosity) for t in (ref_traj[:half], ref_traj[half:])
    ]
    results = {
        "resolved": {
            "seconds_per_frame": resolved_time,
            "halves_errors": compare_statistics(*halves),
            "energy_by_window": [float(e.mean()) for e in energies.split(p["train_frames"], dim=1)],
            "statistics": {
                k: ref_stats[k]
                for k in ("energy", "tke", "dissipation", "energy_error", "tke_error", "dissipation_error")
            },
        }
    }
    print(
        f"resolved solver ({p['refine']}x finer): {resolved_time * 1e3:.1f} ms per frame per trajectory; "
        f"energy {ref_stats['energy']:.3f} +- {ref_stats['energy_error']:.3f}; "
        f"its halves against each other: {_short(results['resolved']['halves_errors'])}",
        flush=True,
    )

    for name, maker in (("coarse_solver", pde(frames)), ("les", pde(frames, 1, SMAGORINSKY))):
        path, seconds = solve(f"{name}_{size}", maker, p["n_reference"], 1)
        data = load_fields(path)
        traj = torch.cat([data.inputs[:, None], data.outputs], 1).double()[:, 1 + args.skip :]
        stats = long_run_statistics(traj, grid, vorticity=True, viscosity=viscosity)
        results[name] = {
            "seconds_per_frame": seconds,
            "speedup": resolved_time / seconds,
            "errors": compare_statistics(stats, ref_stats),
            "status": diagnose(traj, ref_stats, grid, True),
        }
        print(
            f"{name:15s} speed-up {resolved_time / seconds:7.1f}x  errors {_short(results[name]['errors'])}", flush=True
        )

    train_path, _ = solve("coarse_train", pde(p["train_frames"]), p["n_train"] + 2, 0)
    fine_data = pde(p["train_frames"], p["refine"], burn_in=p["fine_burn_in"])
    fine_path, _ = solve(f"resolved_train_{p['n_fine']}{burn_tag}", fine_data, p["n_fine"] + 1, 2)
    steps = HORIZON_FACTOR * p["train_frames"]

    def run_name(name: str) -> str:
        """The run directory's name of a variant: its data and fine-tuning settings appended."""
        settings = VARIANTS[name]
        resolved = f"_n{p['n_fine']}{burn_tag}" if settings["data"] == "resolved" else ""
        fine_tuned = f"_e{p['fine_epochs']}" if "init_from" in settings else ""
        return name + resolved + fine_tuned

    def window_errors(path: Path) -> dict:
        """:func:`compare_statistics` of a rollout file's steps in the reference's window (after ``--skip``,
        up to the reference's length) against the reference."""
        with h5py.File(path, "r") as f:
            pred = torch.from_numpy(f["rollout"][:, args.skip : frames]).double()
        return compare_statistics(long_run_statistics(pred, grid, vorticity=True, viscosity=viscosity), ref_stats)

    def train_and_score(name: str, seed: int) -> dict | None:
        """Train (or reuse) the run of variant ``name`` with training seed ``seed``, roll it out and score
        it; None when its starting run is not trained."""
        settings = VARIANTS[name]
        runs = out / f"seed{seed}"
        start = settings.get("init_from")
        if start is not None and not (runs / run_name(start) / "checkpoints" / "last.pt").exists():
            print(f"{name}, seed {seed}: skipped ({start} is not trained)", flush=True)
            return None
        fine_tuned, resolved = start is not None, settings["data"] == "resolved"
        overrides = [
            f"data.path={fine_path if resolved else train_path}",
            "data.generate=null",
            "data.test=[]",
            f"data.n_train={p['n_fine'] if resolved else p['n_train']}",
            f"data.n_val={1 if resolved else 2}",
            f"train.epochs={p['fine_epochs'] if fine_tuned else p['epochs']}",
            f"train.lr={FINE_LR if fine_tuned else 1e-3}",
            f"train.device={args.device}",
            f"train.threads={args.threads}",
            f"model.modes={p['modes']}",
            f"model.width={p['width']}",
            f"coarse_graining.pde_weight={settings['pde_weight']}",
            f"coarse_graining.sub_frames={settings['sub_frames']}",
            f"seed={seed}",
        ]
        if fine_tuned:
            overrides.append(f"coarse_graining.init_from={runs / run_name(start)}")
        config = load_config(ROOT / "configs" / "kolmogorov_flow_coarse.yaml", overrides)
        run_dir = runs / run_name(name)
        train_to_end(config, run_dir, progress=False)  # resumes a run stopped early; a finished one is reused
        seconds = sum(record["seconds"] for record in read_log(run_dir))  # training wall time, also of a reused run
        stats = long_rollout(
            run_dir, steps, run_dir / f"rollout_{size}.h5", str(reference), samples=p["n_reference"], device=args.device
        )
        errors = window_errors(run_dir / f"rollout_{size}.h5")
        model = open_run(run_dir).model.to(args.device)
        initial = start_frames[:, None].float().to(args.device)
        with torch.no_grad():
            per_frame = seconds_per_frame(lambda: rollout(model, initial, TIMED_FRAMES), TIMED_BATCH)
        print(
            f"{name:15s} seed {seed} speed-up {resolved_time / per_frame:7.1f}x  errors {_short(errors)}  "
            f"{stats['status']} over {steps} steps",
            flush=True,
        )
        return {
            "train_seconds": seconds,
            "seconds_per_frame": per_frame,
            "speedup": resolved_time / per_frame,
            "resolved_seconds_per_frame": resolved_time,  # of this run's timing (load varies between runs)
            "rollout_steps": steps,
            "errors": errors,
            "status": stats["status"],  # of the whole rollout
            "correlation_time": stats["correlation_time"],
            "first_step_relative_l2": stats["relative_l2_per_step"][0],
        }

    for name, settings in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        scored = {seed: train_and_score(name, seed) for seed in args.seeds}
        scored = {str(seed): entry for seed, entry in scored.items() if entry is not None}
        if scored:
            results[name] = {**settings, "seeds": scored, **over_seeds(list(scored.values()))}

    path = ROOT / "benchmarks" / "results" / f"kolmogorov_coarse_{args.preset}{'_' + args.tag if args.tag else ''}.json"
    if args.only and path.exists():  # keep the other learned models' results of earlier runs
        earlier = json.loads(path.read_text())["results"]
        results.update({k: v for k, v in earlier.items() if k in VARIANTS and k not in results})
    summary = {
        "preset": args.preset,
        "seeds": args.seeds,
        **p,
        "horizon_factor": HORIZON_FACTOR,
        "smagorinsky": SMAGORINSKY,
        "device": args.device,
        "threads": args.threads,
        "results": results,
    }
    write_json(path, summary)
    print(f"wrote {path}")


def over_seeds(entries: list[dict]) -> dict:
    """Mean, minimum and maximum over the seeds' ``entries`` of each error (and of the first-step error)."""
    table = {key: [e["errors"][key] for e in entries] for key in entries[0]["errors"]}
    table["first_step_relative_l2"] = [e["first_step_relative_l2"] for e in entries]
    return {
        "errors_mean": {k: sum(v) / len(v) for k, v in table.items()},
        "errors_min": {k: min(v) for k, v in table.items()},
        "errors_max": {k: max(v) for k, v in table.items()},
    }


def _short(errors: dict) -> str:
    return (
        f"energy {errors['energy_relative_error']:.3f}, dissipation {errors['dissipation_relative_error']:.3f}, "
        f"spectrum {errors['spectrum_log_error']:.3f}, PDF {errors['pdf_distance']:.3f}"
    )


if __name__ == "__main__":
    main()
