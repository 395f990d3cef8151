"""Long rollouts end to end: train a one-step run on chaotic data, `oplearn rollout`, `oplearn report`;
and the coarse-graining task's PDE residual."""

import json

import h5py
import pytest
import torch
import yaml
from helpers import run_cli

from oplearn.pdes import KolmogorovFlow, KuramotoSivashinsky
from oplearn.training.coarse_graining import trajectory_residual


@pytest.mark.parametrize(
    "pde, one_sub_frame",
    [
        (KolmogorovFlow(re=100.0, t_final=0.5, n_times=16, burn_in=2.0, dt=5e-3), (0.1, 1.0)),
        (KuramotoSivashinsky(length=32.0, t_final=0.5, n_times=16, burn_in=20.0, dt=0.01), (1e-7, 1e-4)),
    ],
)
def test_sub_frame_residual_of_the_solver_trajectory_converges_at_fourth_order(pde, one_sub_frame):
    """The coarse-graining PDE loss on S sub-frames of one 0.5-time-unit frame interval, for the
    resolved solver's own trajectory: O(h^2) residuals, squared: 16x smaller per doubling of S."""
    fine = pde.grid(32)
    u0 = pde.sample_input(1, fine, torch.Generator().manual_seed(0))
    frames = torch.cat([u0[:, None], pde.solve(u0, fine)], dim=1)  # (1, 17, 1, *grid): 16 sub-frames
    residual = {s: float(trajectory_residual(pde, frames[:, :: 16 // s], 0.5 / s, fine)) for s in (1, 2, 4, 8, 16)}
    # one sub-frame (the frame interval itself): on Kolmogorov flow the exact solution's residual
    # is a third of a frozen model's, so a loss of that residual biases the model
    assert one_sub_frame[0] < residual[1] < one_sub_frame[1]
    frozen = float(trajectory_residual(pde, frames[:, :1].expand(-1, 9, *frames.shape[2:]), 0.5 / 8, fine))
    assert residual[8] < 1e-3 * frozen
    for s in (4, 8):
        assert 10 < residual[s] / residual[2 * s] < 20, residual


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


def test_fine_tuning_starts_from_the_coarse_run_and_needs_its_sub_frames(tmp_path):
    from oplearn.config import load_config
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.errors import ConfigError
    from oplearn.training.run import train
    from oplearn.training.rundir import open_run

    pde = make_pde("kolmogorov_flow", {"t_final": 1.0, "n_times": 2, "burn_in": 0.5, "dt": 0.01})
    data = generate_dataset(pde, 6, 16, tmp_path / "kf.h5", seed=0, progress=False)
    config = tmp_path / "coarse.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"path": str(data), "n_train": 4, "n_val": 2, "batch_size": 4},
                "model": {"name": "fno", "modes": 4, "width": 8, "n_layers": 2, "projection_channels": 8},
                "train": {"task": "coarse_graining", "epochs": 1, "threads": 1, "mode_projection": True},
                "coarse_graining": {"sub_frames": 2, "pde_weight": 1.0},
            }
        )
    )
    train(load_config(config), tmp_path / "coarse", progress=False)
    coarse = open_run(tmp_path / "coarse").model
    x = torch.randn(3, 1, 16, 16)
    assert coarse(x, sub_frames=True).shape == (3, 2, 1, 16, 16)
    assert torch.equal(coarse(x, sub_frames=True)[:, -1], coarse(x))  # a step returns the last sub-frame
    assert int(coarse.projection.max_modes.min()) >= 0  # train.mode_projection fitted on the data

    tuned = ["train.lr=1e-12", f"coarse_graining.init_from={tmp_path / 'coarse'}"]
    train(load_config(config, tuned), tmp_path / "tuned", progress=False)
    for (name, start), end in zip(
        coarse.state_dict().items(), open_run(tmp_path / "tuned").model.state_dict().values()
    ):
        assert torch.allclose(start, end, atol=1e-8), name
    with pytest.raises(ConfigError, match="another model or number of sub-frames"):
        train(load_config(config, [*tuned, "coarse_graining.sub_frames=3"]), tmp_path / "other", progress=False)
