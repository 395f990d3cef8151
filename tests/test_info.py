import h5py
import numpy as np
import pytest
from toy_pde import Doubling

from oplearn.data.generate import generate_dataset
from oplearn.data.info import describe
from oplearn.errors import DataError
from oplearn.pdes import DiffusionReaction


class Crash(Exception):
    pass


class CrashingDoubling(Doubling):
    def solve(self, inputs, grid):
        if self.solves >= 4:
            raise Crash
        return super().solve(inputs, grid)


def test_card_of_a_complete_steady_file(tmp_path):
    path = generate_dataset(
        Doubling(scale=2.0), n=6, resolution=8, out=tmp_path / "d.h5", seed=7, chunk_size=4, progress=False
    )
    card = describe(path)
    lines = dict(line.split(None, 1) for line in card.splitlines()[1:])
    assert lines["status"] == "complete (6 of 6 samples)"
    assert lines["pde"] == "doubling" and "scale=2.0" in lines["parameters"] and "refine=1" in lines["parameters"]
    assert lines["grid"].startswith("8 x 8 nodes on [0, 1] x [0, 1], bounded")
    assert lines["inputs"] == "(6, 1, 8, 8) float32, channels: a" and lines["outputs"].endswith("channels: u")
    assert lines["time"] == "steady (no time axis)" and lines["seed"] == "7"
    assert "torch" in lines["versions"] and "oplearn" in lines["versions"] and lines["created"][:2] == "20"
    assert card.startswith(f"oplearn dataset  {path}")


def test_card_of_a_trajectory_file(tmp_path):
    path = generate_dataset(
        DiffusionReaction(t_end=0.1, frames=3), n=1, resolution=6, out=tmp_path / "dr.h5", progress=False
    )
    card = describe(path)
    assert "time        3 frames, t = 0 .. 0.1, step 0.05" in card
    assert "outputs     (1, 3, 2, 6, 6) float32, channels: u, v" in card
    assert "pde         diffusion-reaction" in card


def test_card_of_an_unfinished_file(tmp_path):
    with pytest.raises(Crash):
        generate_dataset(CrashingDoubling(), n=12, resolution=8, out=tmp_path / "r.h5", chunk_size=4, progress=False)
    card = describe(tmp_path / "r.h5")
    assert "incomplete: 4 of 12 samples written" in card and "r.h5.partial" in card
    assert "created     not finished" in card


def test_other_formats_and_errors(tmp_path):
    with h5py.File(tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5", "w") as f:
        f["tensor"] = np.zeros((2, 3, 4), dtype=np.float32)
    card = describe(tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5")
    assert card.startswith("pdebench file") and "tensor (2, 3, 4) float32" in card
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["foo"] = np.zeros(3)
    with pytest.raises(DataError, match="not an oplearn dataset and not a known format"):
        describe(tmp_path / "other.h5")
    with pytest.raises(DataError, match="does not exist"):
        describe(tmp_path / "missing.h5")
