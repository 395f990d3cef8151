import h5py
import numpy as np
import pytest
import torch
from toy_pde import Doubling

from oplearn.data.files import load_fields, read_meta
from oplearn.data.generate import generate_dataset
from oplearn.errors import DataError


def test_generate_writes_complete_file_with_metadata(tmp_path):
    out = generate_dataset(Doubling(), n=10, resolution=8, out=tmp_path / "d.h5", seed=3, chunk_size=4, progress=False)
    data = load_fields(out)
    assert data.inputs.shape == (10, 1, 8, 8) and data.outputs.shape == (10, 1, 8, 8)
    assert torch.allclose(data.outputs, 2 * data.inputs + 1, atol=1e-5)
    meta = read_meta(out)
    assert meta["pde"] == "doubling" and meta["seed"] == 3 and meta["n_complete"] == 10
    assert meta["pde_params"] == {"scale": 1.0, "refine": 1}
    assert {"torch", "oplearn", "h5py"} <= set(meta["versions"])
    assert meta["grid"]["shape"] == [8, 8]
    assert not (tmp_path / "d.h5.partial").exists()


def test_same_seed_same_samples_and_prefix_property(tmp_path):
    a = load_fields(generate_dataset(Doubling(), 10, 8, tmp_path / "a.h5", seed=1, chunk_size=4, progress=False))
    b = load_fields(generate_dataset(Doubling(), 6, 8, tmp_path / "b.h5", seed=1, chunk_size=4, progress=False))
    c = load_fields(generate_dataset(Doubling(), 6, 8, tmp_path / "c.h5", seed=2, chunk_size=4, progress=False))
    assert torch.equal(a.inputs[:6], b.inputs)
    assert not torch.equal(b.inputs, c.inputs)


class Crash(Exception):
    pass


class CrashingDoubling(Doubling):
    """Dies in the middle of the job, like a killed process."""

    def __init__(self, crash_after: int, **kw):
        super().__init__(**kw)
        self.crash_after = crash_after

    def solve(self, inputs, grid):
        if self.solves >= self.crash_after:
            raise Crash
        return super().solve(inputs, grid)


def test_interrupted_generation_resumes_to_identical_file(tmp_path):
    full = load_fields(generate_dataset(Doubling(), 12, 8, tmp_path / "full.h5", seed=5, chunk_size=4, progress=False))
    with pytest.raises(Crash):
        generate_dataset(CrashingDoubling(8), 12, 8, tmp_path / "r.h5", seed=5, chunk_size=4, progress=False)
    assert not (tmp_path / "r.h5").exists(), "no file may appear under the final name before it is complete"
    with h5py.File(tmp_path / "r.h5.partial") as f:
        assert f.attrs["n_complete"] == 8
    with pytest.raises(DataError, match="unfinished"):
        load_fields(tmp_path / "r.h5")
    resumed = Doubling()
    generate_dataset(resumed, 12, 8, tmp_path / "r.h5", seed=5, chunk_size=4, progress=False)
    assert resumed.solves == 4, "only the missing chunk is computed"
    assert torch.equal(load_fields(tmp_path / "r.h5").inputs, full.inputs)


def test_resume_with_other_settings_is_refused(tmp_path):
    with pytest.raises(Crash):
        generate_dataset(CrashingDoubling(4), 12, 8, tmp_path / "r.h5", seed=5, chunk_size=4, progress=False)
    with pytest.raises(DataError, match="different settings.*seed"):
        generate_dataset(Doubling(), 12, 8, tmp_path / "r.h5", seed=6, chunk_size=4, progress=False)


def test_existing_output_is_not_overwritten(tmp_path):
    generate_dataset(Doubling(), 2, 4, tmp_path / "d.h5", progress=False)
    with pytest.raises(DataError, match="already exists"):
        generate_dataset(Doubling(), 2, 4, tmp_path / "d.h5", progress=False)


def test_refined_generation_subsamples_nodes(tmp_path):
    coarse = load_fields(generate_dataset(Doubling(refine=1), 2, 5, tmp_path / "c.h5", progress=False))
    fine = load_fields(generate_dataset(Doubling(refine=2), 2, 5, tmp_path / "f.h5", progress=False))
    assert fine.inputs.shape == coarse.inputs.shape == (2, 1, 5, 5)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing", "does not exist"),
        ("truncated", "not a readable HDF5 file"),
        ("foreign", "not an oplearn dataset"),
        ("nan", "NaN or infinite"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, damage, message):
    path = tmp_path / "d.h5"
    if damage != "missing":
        generate_dataset(Doubling(), 4, 8, path, progress=False)
    if damage == "truncated":
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 3])
    elif damage == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.zeros(3)
    elif damage == "nan":
        with h5py.File(path, "r+") as f:
            f["inputs"][2, 0, 1, 1] = np.nan
    with pytest.raises(DataError, match=message) as info:
        load_fields(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "darcy",
        "poisson",
        "helmholtz",
        "burgers",
        "burgers_pdebench",
        "advection",
        "navier_stokes",
        "diffusion-reaction",
    ],
)
def test_pde_rebuilds_from_recorded_parameters(name):
    from oplearn.data.generate import make_pde

    pde = make_pde(name)
    assert make_pde(name, pde.params()).params() == pde.params()
