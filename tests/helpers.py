"""Shared helpers for tests that run the command line or train small models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(*args, cwd=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    """Run ``python -m oplearn.cli ARGS`` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "oplearn.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"oplearn {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def tiny_config(path: Path, data: Path, epochs: int = 3, test=(), model=None, **train) -> Path:
    """A small config on ``data`` (default a small FNO; CPU, one thread, so runs are bit-reproducible)."""
    config = {
        "seed": 0,
        "data": {"path": str(data), "n_val": 8, "batch_size": 8, "test": [{"path": str(t)} for t in test]},
        "model": model
        or {"name": "fno", "modes": 4, "width": 8, "n_layers": 2, "projection_channels": 16, "padding": 0.1},
        "train": {"epochs": epochs, "lr": 5e-3, "threads": 1, **train},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def one_thread():
    """Run a test on one thread (walks and tiny networks are many small tensor operations,
    which a second thread only slows down); use as ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def train_whole_and_resumed(config, tmp_path: Path, task_class: type, monkeypatch, stop_epoch: int = 2) -> tuple:
    """Train ``config`` twice: once through, and once killed (``KeyboardInterrupt``) as
    ``task_class`` starts epoch ``stop_epoch``, then resumed. Returns the two runs' last
    checkpoints ``(whole, resumed)``, for tests that resuming is exact."""
    from oplearn.training.run import train

    train(config, tmp_path / "whole", progress=False)
    start_epoch = task_class.start_epoch

    def killed(self, epoch):
        if epoch == stop_epoch:
            raise KeyboardInterrupt
        start_epoch(self, epoch)

    monkeypatch.setattr(task_class, "start_epoch", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(task_class, "start_epoch", start_epoch)
    train(config, tmp_path / "resumed", resume=True, progress=False)
    return tuple(
        torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=True) for run in ("whole", "resumed")
    )
