"""``oplearn convert`` for every external layout, then ``train`` and ``evaluate`` from the command line;
training on the converted file and on the original gives the same weights."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest
import torch
import yaml
from test_readers import centres, write_the_well

from oplearn.cli import main
from oplearn.data.files import read_meta
from oplearn.data.readers import read_dataset
from oplearn.training.checkpoint import load_checkpoint
from oplearn.training.rundir import LAST


def neuraloperator(path):
    g = torch.Generator().manual_seed(0)
    torch.save({"x": torch.rand(12, 8, 8, generator=g), "y": torch.rand(12, 8, 8, generator=g)}, path)


def pdebench(path):
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = rng.random((12, 8, 8), dtype=np.float32), rng.random((12, 1, 8, 8), dtype=np.float32)
        f["x-coordinate"] = f["y-coordinate"] = centres(8)


def the_well(path):
    write_the_well(path)  # 2 trajectories of 4 frames, pressure and velocity on 8 x 6


def plain(path):
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as f:
        f["inputs"] = rng.random((12, 2, 8, 8), dtype=np.float32)
        f["outputs"] = rng.random((12, 1, 8, 8), dtype=np.float32)
        f["inputs"].attrs["names"] = ["a", "b"]
        f["x"] = f["y"] = np.linspace(-1, 1, 8)


LAYOUTS = {  # writer, file name, samples, the format read back
    "neuraloperator": (neuraloperator, "darcy_train_8.pt", 12),
    "pdebench": (pdebench, "2D_DarcyFlow_beta1.0_Train.hdf5", 12),
    "the-well": (the_well, "toy.hdf5", 2),
    "hdf5": (plain, "plain.h5", 12),
}


def _config(path, data, n):
    config = {
        "seed": 0,
        "data": {"path": str(data), "n_train": n - 1, "n_val": 1, "batch_size": 4},
        "model": {"name": "fno", "modes": 2, "width": 4, "n_layers": 1, "projection_channels": 4},
        "train": {"epochs": 2, "lr": 1e-2, "threads": 1},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _cli(*args) -> None:
    assert main([str(a) for a in args]) == 0, args


@pytest.mark.parametrize("layout", LAYOUTS)
def test_convert_then_train_and_evaluate_gives_the_weights_of_the_original(layout, tmp_path, capsys):
    write, name, n = LAYOUTS[layout]
    original, converted = tmp_path / name, tmp_path / "converted.h5"
    write(original)
    _cli("convert", original, converted)
    assert "wrote" in capsys.readouterr().out
    a, b = read_dataset(original), read_dataset(converted)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.outputs, b.outputs) and a.grid == b.grid
    assert (a.time is None and b.time is None) or torch.equal(a.time, b.time)

    for data, run in ((converted, "run_converted"), (original, "run_original")):
        _cli("train", _config(tmp_path / f"{run}.yaml", data, n), "--out", tmp_path / run, "--no-progress")
    weights = [load_checkpoint(tmp_path / run / LAST)["model"] for run in ("run_converted", "run_original")]
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key

    # the original and the converted file are the same problem: each run evaluates on both
    _cli("evaluate", tmp_path / "run_original", "--data", converted, original)
    results = json.loads((tmp_path / "run_original" / "metrics.json").read_text())["results"]
    assert len(results) == 2 and results[0]["metrics"] == results[1]["metrics"]


def test_converted_file_records_its_source(tmp_path, capsys):
    original = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    pdebench(original)
    _cli("convert", original, tmp_path / "out.h5", "--periodic", "--limit", 5)
    meta = read_meta(tmp_path / "out.h5")
    source = meta["source"]
    assert source["format"] == "pdebench" and source["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert source["reader"]["periodic"] is True and source["reader"]["periodic_guessed_from_name"] is False
    assert meta["n"] == 5 and meta["pde"] == "pdebench" and meta["input_names"] == ["nu"] and "versions" in meta
    capsys.readouterr()
    _cli("info", tmp_path / "out.h5")
    card = capsys.readouterr().out
    assert "source" in card and original.name in card and "pdebench" in card


def test_plain_hdf5_array_names_and_trajectories(tmp_path):
    path = tmp_path / "mine.h5"
    rng = np.random.default_rng(3)
    with h5py.File(path, "w") as f:
        f["coefficient"] = rng.random((3, 1, 16), dtype=np.float32)
        f["solution"] = rng.random((3, 5, 1, 16), dtype=np.float32)
        f["time"] = np.linspace(0.1, 0.5, 5)
    _cli("convert", path, tmp_path / "out.h5", "--inputs", "coefficient", "--outputs", "solution", "--periodic")
    data = read_dataset(tmp_path / "out.h5")
    assert (
        data.outputs.shape == (3, 5, 1, 16)
        and data.grid.periodic
        and torch.allclose(data.time, torch.linspace(0.1, 0.5, 5, dtype=torch.float64))
    )
