import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import SRC, tiny_config

from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import CheckpointError, OplearnError, TrainingDiverged
from oplearn.training import tasks as tasks_module
from oplearn.training.checkpoint import load_checkpoint, save_checkpoint
from oplearn.training.run import LAST, learning_rate_factor, load_run, train, train_to_end


@pytest.fixture(scope="module")
def darcy16(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "darcy16.h5"
    return generate_dataset(make_pde("darcy"), 72, 16, path, seed=0, progress=False)


def test_training_decreases_loss_and_saves_a_reloadable_model(tmp_path, darcy16):
    config = load_config(tiny_config(tmp_path / "c.yaml", darcy16, epochs=8))
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 9))
    assert log[-1]["train_loss"] < 0.6 * log[0]["train_loss"]
    assert log[-1]["val_relative_l2"] < log[0]["val_relative_l2"]
    model, saved = load_run(tmp_path / "run")
    assert saved == config
    x = torch.rand(2, 1, 24, 24) * 9 + 3
    assert model(x).shape == (2, 1, 24, 24)


def _train_subprocess(config_path, run_dir, *extra):
    env = {**os.environ, "PYTHONPATH": SRC}
    cmd = [
        sys.executable,
        "-m",
        "oplearn.cli",
        "train",
        str(config_path),
        "--out",
        str(run_dir),
        "--no-progress",
        *extra,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_resume_after_kill_reaches_the_same_weights(tmp_path, darcy16):
    epochs = 30
    config_path = tiny_config(tmp_path / "c.yaml", darcy16, epochs=epochs)
    reference = tmp_path / "uninterrupted"
    train(load_config(config_path), reference, progress=False)

    run_dir = tmp_path / "killed"
    proc = _train_subprocess(config_path, run_dir)
    log = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(run_dir / LAST)["epoch"]
    assert proc.returncode == -signal.SIGKILL and 1 <= killed_at < epochs, "the run must really be killed mid-way"

    proc = _train_subprocess(config_path, run_dir, "--resume")
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    final = load_checkpoint(run_dir / LAST)
    expected = load_checkpoint(reference / LAST)
    assert final["epoch"] == epochs
    for key, value in expected["model"].items():
        torch.testing.assert_close(final["model"][key], value, rtol=0, atol=1e-6, msg=key)
    epochs_logged = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs_logged == list(range(1, epochs + 1))


def test_run_directory_guards(tmp_path, darcy16):
    config = load_config(tiny_config(tmp_path / "c.yaml", darcy16, epochs=1))
    with pytest.raises(OplearnError, match="nothing to resume"):
        train(config, tmp_path / "run", resume=True, progress=False)
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(OplearnError, match="already holds a run; pass --resume"):
        train(config, tmp_path / "run", progress=False)
    changed = load_config(tiny_config(tmp_path / "c2.yaml", darcy16, epochs=1, lr=1e-2))
    with pytest.raises(OplearnError, match="differs .* train.lr"):
        train(changed, tmp_path / "run", resume=True, progress=False)
    train_to_end(config, tmp_path / "run", progress=False)  # finished: left as it is, no "already holds a run"
    other_threads = load_config(tiny_config(tmp_path / "c3.yaml", darcy16, epochs=1))
    other_threads.train.threads = 2  # how a run executes may change on resume
    train(other_threads, tmp_path / "run", resume=True, progress=False)


def test_resume_may_lengthen_the_run(tmp_path, darcy16):
    """A finished run continues to a larger train.epochs on the closed-form schedule of the new length."""
    train(load_config(tiny_config(tmp_path / "c.yaml", darcy16, epochs=2)), tmp_path / "run", progress=False)
    longer = load_config(tiny_config(tmp_path / "c4.yaml", darcy16, epochs=4))
    train(longer, tmp_path / "run", resume=True, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    for record in log[2:]:  # epochs 3 and 4 follow the cosine of 4 epochs
        assert record["lr"] == pytest.approx(longer.train.lr * learning_rate_factor(longer, record["epoch"] - 1))
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [(s["start_epoch"], s["end_epoch"]) for s in meta["sessions"]] == [(0, 2), (2, 4)]
    assert meta["task"] == "map" and meta["model"] == "fno" and meta["parameters"] > 0
    assert all(s["device"] == "cpu" and s["seconds"] > 0 for s in meta["sessions"])
    assert "epochs: 4" in (tmp_path / "run" / "config.yaml").read_text()
    shorter = load_config(tiny_config(tmp_path / "c5.yaml", darcy16, epochs=3))
    with pytest.raises(OplearnError, match="has trained 4 epochs already"):
        train(shorter, tmp_path / "run", resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, darcy16, monkeypatch):
    calls = {"n": 0}
    n_batches = 64 // 8  # 72 samples minus 8 for validation, batch 8

    class PoisonedAfterOneEpoch(torch.nn.Module):
        def forward(self, pred, true):
            calls["n"] += 1
            loss = ((pred - true) ** 2).mean()
            return loss * float("nan") if calls["n"] > n_batches + 2 else loss

    monkeypatch.setattr(tasks_module, "RelativeL2Loss", PoisonedAfterOneEpoch)
    config = load_config(tiny_config(tmp_path / "c.yaml", darcy16, epochs=5))
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2; the last good checkpoint \\(epoch 1\\)"):
        train(config, tmp_path / "run", progress=False)
    state = load_checkpoint(tmp_path / "run" / LAST)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())


class Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "oplearn-checkpoint", "model": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing to load .* pickled Python objects"):
        load_checkpoint(path)


def test_truncated_and_missing_checkpoints(tmp_path):
    path = tmp_path / "ok.pt"
    save_checkpoint({"model": {"w": torch.ones(1000)}}, path)
    assert load_checkpoint(path)["model"]["w"].sum() == 1000
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_trajectory_data_trains_with_time_as_channels(tmp_path):
    """Burgers u0 -> u(t = 1) (stored as a one-frame trajectory) trains and evaluates in 1D."""
    from oplearn.evaluate import evaluate_run

    burgers = make_pde("burgers", {"modes": 16, "dt": 1e-2})
    train_file = generate_dataset(burgers, 40, 32, tmp_path / "b.h5", seed=0, progress=False)
    test_file = generate_dataset(burgers, 8, 64, tmp_path / "b64.h5", seed=1, progress=False)
    config = load_config(tiny_config(tmp_path / "c.yaml", train_file, epochs=4, test=[test_file]), ["model.padding=0"])
    train(config, tmp_path / "run", progress=False)
    (row,) = evaluate_run(tmp_path / "run", [test_file])
    assert row["resolution"] == "64" and 0 < row["metrics"]["relative_l2"] < 1


def test_bf16_autocast_runs_on_cpu_and_matches_fp32(tmp_path, darcy16):
    losses = {}
    for precision in ("fp32", "bf16"):
        config = load_config(tiny_config(tmp_path / f"{precision}.yaml", darcy16, epochs=2, precision=precision))
        train(config, tmp_path / precision, progress=False)
        log = [json.loads(line) for line in (tmp_path / precision / "metrics.jsonl").read_text().splitlines()]
        losses[precision] = [r["train_loss"] for r in log]
    for full, mixed in zip(losses["fp32"], losses["bf16"]):
        assert abs(mixed - full) < 0.05 * full, losses
    assert losses["bf16"] != losses["fp32"], "autocast must actually change the arithmetic"


def test_gradient_accumulation_gives_the_same_update(tmp_path, darcy16, monkeypatch):
    from oplearn.models.operator import OperatorModel

    calls = []
    forward = OperatorModel.forward
    monkeypatch.setattr(OperatorModel, "forward", lambda self, x: calls.append(len(x)) or forward(self, x))
    weights, sizes = {}, {}
    for accumulate in (1, 4):
        calls.clear()
        config = load_config(tiny_config(tmp_path / f"a{accumulate}.yaml", darcy16, epochs=2, accumulate=accumulate))
        train(config, tmp_path / f"a{accumulate}", progress=False)
        weights[accumulate] = load_checkpoint(tmp_path / f"a{accumulate}" / LAST)["model"]
        sizes[accumulate] = sorted(set(calls))
    # micro-batches of 2 in training, full batches in validation, one sample when the model's fit is checked
    assert sizes == {1: [1, 8], 4: [1, 2, 8]}
    for key, value in weights[1].items():
        torch.testing.assert_close(weights[4][key], value, rtol=1e-4, atol=1e-6, msg=key)
