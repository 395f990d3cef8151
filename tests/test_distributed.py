"""Two gloo processes under torchrun train to the same weights as one process."""

import os
import subprocess
import sys

import pytest
import torch
from helpers import SRC, tiny_config

from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.training.checkpoint import load_checkpoint
from oplearn.training.run import LAST, train


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    data = generate_dataset(make_pde("darcy"), 40, 16, tmp_path / "d.h5", seed=0, progress=False)
    config_path = tiny_config(tmp_path / "c.yaml", data, epochs=3)  # global batch 8: 4 per process with 2
    train(load_config(config_path), tmp_path / "single", progress=False)

    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "oplearn.cli",
        "--",
        "train",
        str(config_path),
        "--out",
        str(tmp_path / "ddp"),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("trained 3 epochs") == 1, "rank 0 alone prints the results"

    single, ddp = load_checkpoint(tmp_path / "single" / LAST), load_checkpoint(tmp_path / "ddp" / LAST)
    assert ddp["epoch"] == 3
    for key, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    logs = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(logs) == 3, "rank 0 alone writes the log"


def _stop_in_epoch_two_then_resume_on_two_processes(tmp_path, monkeypatch, config_path, batches_per_epoch):
    """Train ``config_path`` uninterrupted on one process, then again with the loss turning NaN in
    epoch 2 (so only epoch 1's checkpoint is kept), resume that run on two gloo processes, and
    check it reaches the uninterrupted run's weights."""
    from oplearn.errors import TrainingDiverged
    from oplearn.training import tasks as tasks_module

    train(load_config(config_path), tmp_path / "reference", progress=False)
    calls = {"n": 0}
    real = tasks_module.RelativeL2Loss

    class StopsInEpochTwo(real):
        def forward(self, pred, true):
            calls["n"] += 1
            return super().forward(pred, true) * (float("nan") if calls["n"] > batches_per_epoch + 1 else 1.0)

    monkeypatch.setattr(tasks_module, "RelativeL2Loss", StopsInEpochTwo)
    with pytest.raises(TrainingDiverged):
        train(load_config(config_path), tmp_path / "moved", progress=False)
    assert load_checkpoint(tmp_path / "moved" / LAST)["epoch"] == 1

    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "oplearn.cli",
        "--",
        "train",
        str(config_path),
        "--out",
        str(tmp_path / "moved"),
        "--resume",
        "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resumed, reference = load_checkpoint(tmp_path / "moved" / LAST), load_checkpoint(tmp_path / "reference" / LAST)
    assert resumed["epoch"] == 3
    for key, value in reference["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_a_single_process_run_resumes_on_two_processes(tmp_path, monkeypatch):
    data = generate_dataset(make_pde("darcy"), 40, 16, tmp_path / "d.h5", seed=0, progress=False)
    config_path = tiny_config(tmp_path / "c.yaml", data, epochs=3)  # 32 training samples: 4 batches per epoch
    _stop_in_epoch_two_then_resume_on_two_processes(tmp_path, monkeypatch, config_path, batches_per_epoch=4)


def test_one_step_pushforward_run_resumes_on_two_processes(tmp_path, monkeypatch):
    """Autoregressive training (pushforward through the plain model) resumes across process counts."""
    from oplearn.training.tasks import OneStepTask

    data = generate_dataset(
        make_pde("advection", {"n_times": 6, "t_final": 0.3}), 16, 16, tmp_path / "a.h5", seed=0, progress=False
    )
    model = {"name": "fno", "modes": 4, "width": 8, "n_layers": 2, "projection_channels": 16}
    config_path = tiny_config(
        tmp_path / "c.yaml", data, epochs=3, model=model, task="one_step", history=2, pushforward=1
    )
    batches = -(-len(OneStepTask(load_config(config_path), progress=False)) // 8)
    _stop_in_epoch_two_then_resume_on_two_processes(tmp_path, monkeypatch, config_path, batches)
