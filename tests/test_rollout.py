import json

import pytest
import torch
from helpers import tiny_config

from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.evaluate import evaluate_run, format_table
from oplearn.report import make_report
from oplearn.training.rollout import full_trajectory, rollout, window_frames, window_targets, windows
from oplearn.training.run import load_run, train


def _clock(n=3, frames=6, c=2, s=5):
    """Trajectories whose frame t equals t everywhere (plus 100 * sample)."""
    t = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1)
    return (t + 100 * torch.arange(n).view(n, 1, 1, 1)).expand(n, frames, c, s).clone()


def test_full_trajectory_detects_a_stored_frame_zero():
    traj = _clock()
    assert torch.equal(full_trajectory(traj[:, 0], traj), traj)
    assert torch.equal(full_trajectory(traj[:, 0], traj[:, 1:]), traj)
    assert torch.equal(full_trajectory(traj[:, 0] + 1e-9, traj), traj)  # solver round-off
    times = torch.linspace(0, 1, 6)
    assert torch.equal(full_trajectory(traj[:, 0], traj, times), traj)
    assert torch.equal(full_trajectory(traj[:, 0], traj[:, 1:], times[1:]), traj)
    with pytest.raises(ValueError, match="trajectory outputs"):
        full_trajectory(traj[:, 0], traj[:, 1])


@pytest.mark.parametrize("history,pushforward", [(1, 0), (2, 0), (2, 1), (3, 2)])
def test_windows_and_targets_index_the_right_frames(history, pushforward):
    traj = _clock()
    pairs = windows(3, 6, history, pushforward)
    ts = list(range(history - 1, 6 - 1 - pushforward))
    assert pairs.tolist() == [[i, t] for i in range(3) for t in ts]
    x, y = window_frames(traj, pairs, history), window_targets(traj, pairs, pushforward)
    assert x.shape == (len(pairs), history, 2, 5) and y.shape == (len(pairs), 2, 5)
    for (i, t), xi, yi in zip(pairs.tolist(), x, y):
        assert xi[:, 0, 0].tolist() == [100 * i + k for k in range(t - history + 1, t + 1)]
        assert (yi == 100 * i + t + 1 + pushforward).all()
    with pytest.raises(ValueError, match="too short"):
        windows(3, 3, history=2, pushforward=1)


class AddOne(torch.nn.Module):
    def forward(self, x):  # the last frame of the window, plus one
        return x[:, -2:] + 1


def test_rollout_feeds_predictions_back():
    frames = torch.randn(4, 3, 2, 7)  # history 3, 2 channels
    out = rollout(AddOne(), frames, steps=5)
    assert out.shape == (4, 5, 2, 7)
    for k in range(5):
        torch.testing.assert_close(out[:, k], frames[:, -1] + k + 1)


@pytest.fixture(scope="module")
def advection(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "adv32.h5"
    return generate_dataset(
        make_pde("advection", {"n_times": 11, "t_final": 0.5}), 24, 32, path, seed=0, progress=False
    )


FNO1D = {"name": "fno", "modes": 8, "width": 12, "n_layers": 2, "projection_channels": 16}


def test_one_step_training_and_rollout_evaluation(tmp_path, advection):
    config = load_config(
        tiny_config(tmp_path / "c.yaml", advection, epochs=6, test=[advection], model=FNO1D, task="one_step", history=2)
    )
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < 0.7 * log[0]["train_loss"]
    assert log[-1]["val_relative_l2"] < log[0]["val_relative_l2"]
    model, _ = load_run(tmp_path / "run")
    assert (model.in_channels, model.out_channels) == (2, 1)
    rows = evaluate_run(tmp_path / "run", [advection])
    per_step = rows[0]["relative_l2_per_step"]
    assert len(per_step) == 11 - 2
    assert per_step[-1] > per_step[0]
    assert rows[0]["metrics"]["relative_l2"] == pytest.approx(sum(per_step) / len(per_step), rel=1e-6)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"][0]
    assert saved["relative_l2_per_step"] == per_step
    assert len(format_table(rows).splitlines()) == 3
    report = make_report(tmp_path / "run").parent
    assert (report / "rollout_error.png").stat().st_size > 1000 and (report / "rollout_32.png").exists()
    assert "| task | `one_step` |" in (report / "report.md").read_text()


def test_pushforward_runs(tmp_path, advection):
    config = load_config(
        tiny_config(tmp_path / "c.yaml", advection, epochs=2, model=FNO1D, task="one_step", pushforward=1)
    )
    summary = train(config, tmp_path / "run", progress=False)
    assert torch.isfinite(torch.tensor(summary["best_val_relative_l2"]))


def test_first_frames_in_the_rest_out(tmp_path, advection):
    """The FNO Navier-Stokes setting: frames 0..k-1 in, frames k..T out (data.input_frames)."""
    from oplearn.data.files import load_fields
    from oplearn.training.tasks import map_view

    data = load_fields(advection)
    trajectory = full_trajectory(data.inputs, data.outputs, data.time)
    view = map_view(data, 4)
    assert view.inputs.shape == (24, 4, 32) and view.outputs.shape == (24, trajectory.shape[1] - 4, 32)
    torch.testing.assert_close(view.inputs[:, 3], trajectory[:, 3, 0])
    torch.testing.assert_close(view.outputs[:, 0], trajectory[:, 4, 0])

    config_path = tiny_config(tmp_path / "c.yaml", advection, epochs=12, test=[advection], model=FNO1D)
    config = load_config(config_path, ["data.input_frames=4"])
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < 0.7 * log[0]["train_loss"]
    model, _ = load_run(tmp_path / "run")
    assert (model.in_channels, model.out_channels) == (4, trajectory.shape[1] - 4)
    rows = evaluate_run(tmp_path / "run", [advection])
    assert rows[0]["metrics"]["relative_l2"] < 1.0

    from oplearn.errors import ConfigError

    with pytest.raises(ConfigError, match="input_frames=12 leaves no output frame"):
        train(load_config(config_path, ["data.input_frames=12"]), tmp_path / "bad", progress=False)
