"""Long rollouts end to end: train a one-step run on chaotic data, `oplearn rollout`, `oplearn report`;
and the coarse-graining task's PDE residual."""

import json

import h5py
import pytest
import torch
import yaml
from helpers import run_cli

from oplearn.pdes import KolmogorovFlow, KuramotoSivashinsky
from oplearn.training.coarse_graining import step_residual


@pytest.mark.parametrize(
    "pde",
    [
        KuramotoSivashinsky(length=32.0, t_final=1.0, n_times=10, burn_in=20.0, dt=0.05),
        KolmogorovFlow(re=40.0, t_final=0.1, n_times=10, burn_in=1.0, dt=5e-3),
    ],
)
def test_step_residual_is_small_for_the_solution_and_second_order_in_the_step(pde):
    fine = pde.grid(32)
    u0 = pde.sample_input(1, fine, torch.Generator().manual_seed(0))
    frames = torch.cat([u0[:, None], pde.solve(u0, fine)], dim=1)  # (1, 11, 1, *grid)
    dt = float(pde.times[1] - pde.times[0])
    one = step_residual(pde, frames[:, 0], frames[:, 1], dt, fine)
    two = step_residual(pde, frames[:, 0], frames[:, 2], 2 * dt, fine)
    frozen = step_residual(pde, frames[:, 0], frames[:, 0], dt, fine)  # a model that predicts no change
    assert float(one) < 1e-3 * float(frozen)
    assert 8 < float(two / one) < 24  # (2 dt)^2 / dt^2 = 4 in the residual, squared: 16


def test_train_rollout_and_report_end_to_end(tmp_path):
    data = tmp_path / "ks.h5"
    run_cli(
        "generate",
        "kuramoto_sivashinsky",
        "--n",
        "12",
        "--resolution",
        "32",
        "--out",
        data,
        "--no-progress",
        "--param",
        "length=32",
        "--param",
        "t_final=8",
        "--param",
        "n_times=20",
        "--param",
        "burn_in=20",
    )
    config = tmp_path / "refiner.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "seed": 0,
                "data": {"path": str(data), "n_train": 8, "n_val": 4, "batch_size": 16},
                "model": {
                    "name": "fno",
                    "modes": 8,
                    "width": 12,
                    "n_layers": 2,
                    "projection_channels": 16,
                    "padding": 0,
                },
                "train": {"task": "refiner", "epochs": 4, "lr": 3e-3, "threads": 1, "positional_features": False},
                "refiner": {"steps": 2},
            }
        )
    )
    run = tmp_path / "run"
    run_cli("train", config, "--out", run, "--no-progress")
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the training loss is dominated by the noise levels' (order one, slow to fall): the rollouts improve
    assert log[-1]["val_relative_l2"] < log[0]["val_relative_l2"]

    out = tmp_path / "rollouts" / "long.h5"
    printed = run_cli("rollout", run, "--steps", "60", "--out", out, "--data", data, "--samples", "3").stdout
    assert "rolled out 3 trajectories for 60 steps" in printed and "correlation time" in printed
    with h5py.File(out) as f:
        assert f["rollout"].shape == (3, 60, 1, 32) and f["initial"].shape == (3, 1, 1, 32)
    stats = json.loads(out.with_suffix(".json").read_text())
    assert stats == json.loads((run / "rollout.json").read_text())
    assert set(stats["correlation_time"]) == {"0.8", "0.9", "0.95"}
    assert stats["reference_steps"] == 20 and len(stats["relative_l2_per_step"]) == 20
    assert stats["status"] in ("ok", "damped", "inflated", "exploding") and len(stats["blow_up_step"]) == 3
    assert {"energy_relative_error", "spectrum_log_error", "pdf_distance", "autocorrelation_error"} <= set(
        stats["errors"]
    )
    assert sorted(p.name for p in out.parent.iterdir()) == ["long.h5", "long.json"]  # nothing half-written left

    run_cli("report", run, "--data", data)
    markdown = (run / "report" / "report.md").read_text()
    assert "## Long rollout" in markdown and "long_rollout.png" in markdown
