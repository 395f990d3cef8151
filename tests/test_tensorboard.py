"""TensorBoard event files beside metrics.jsonl (train.tensorboard: true), consistent across a resume."""

import pytest
from helpers import tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.training.run import train
from oplearn.training.rundir import read_log


def _scalars(folder, tag):
    events = EventAccumulator(str(folder))
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def test_event_files_hold_every_logged_number_and_follow_a_resume(tmp_path):
    data = generate_dataset(make_pde("darcy"), 16, 16, tmp_path / "d.h5", progress=False)
    config = tiny_config(tmp_path / "c.yaml", data, epochs=2, tensorboard=True)
    train(load_config(config), tmp_path / "run", progress=False)
    log = read_log(tmp_path / "run")
    board = tmp_path / "run" / "tensorboard"
    for tag in ("train_loss", "val_relative_l2", "lr", "seconds"):
        assert _scalars(board, tag) == {r["epoch"]: pytest.approx(r[tag], rel=1e-6) for r in log}, tag
    train(load_config(config, ["train.epochs=3"]), tmp_path / "run", resume=True, progress=False)
    steps = _scalars(board, "train_loss")
    assert sorted(steps) == [1, 2, 3] and steps[3] == pytest.approx(
        read_log(tmp_path / "run")[-1]["train_loss"], rel=1e-6
    )
    assert not (tmp_path / "plain" / "tensorboard").exists()
    train(load_config(config, ["train.tensorboard=false"]), tmp_path / "plain", progress=False)
    assert not (tmp_path / "plain" / "tensorboard").exists()


def test_a_missing_tensorboard_names_the_extra(tmp_path, monkeypatch):
    import sys

    from oplearn.errors import OplearnError

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    config = load_config(tiny_config(tmp_path / "c.yaml", tmp_path / "d.h5", tensorboard=True))
    with pytest.raises(
        OplearnError, match=r"this needs the Python package 'tensorboard': pip install 'oplearn\[tensorboard\]'"
    ):
        train(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
