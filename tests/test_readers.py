import argparse

import h5py
import numpy as np
import pytest
import torch
from toy_pde import Doubling

from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset
from oplearn.data.readers import detect_format, read_dataset
from oplearn.errors import DataError
from oplearn.pdes import DiffusionReaction


def centres(n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    return (lo + (np.arange(n) + 0.5) * (hi - lo) / n).astype(np.float32)


def test_neuraloperator_pt_dictionaries(tmp_path):
    x, y = torch.rand(5, 16, 16), torch.rand(5, 1, 16, 16)
    torch.save({"x": x, "y": y}, tmp_path / "darcy_train_16.pt")
    data = read_dataset(tmp_path / "darcy_train_16.pt")
    assert data.meta["format"] == "neuraloperator" and len(data) == 5
    assert data.inputs.shape == data.outputs.shape == (5, 1, 16, 16) and data.inputs.dtype == torch.float32
    assert torch.equal(data.inputs[:, 0], x) and torch.equal(data.outputs, y)
    assert data.grid.shape == (16, 16) and data.grid.domain == ((0.0, 1.0), (0.0, 1.0)) and not data.grid.periodic
    assert data.time is None
    assert read_dataset(tmp_path / "darcy_train_16.pt", periodic=True, limit=2).grid.periodic
    assert len(read_dataset(tmp_path / "darcy_train_16.pt", limit=2)) == 2


def test_neuraloperator_1d_trajectories_and_boolean_masks(tmp_path):
    x, y = torch.rand(3, 16, dtype=torch.float64), torch.rand(3, 5, 16, dtype=torch.float64)
    torch.save({"x": x, "y": y, "visc": torch.tensor([[0.01]])}, tmp_path / "burgers_test_16.pt")
    data = read_dataset(tmp_path / "burgers_test_16.pt", periodic=True)
    assert data.inputs.shape == (3, 1, 16) and data.outputs.shape == (3, 5, 1, 16) and data.grid.periodic
    assert torch.allclose(data.outputs[:, :, 0], y.float()) and torch.equal(
        data.time, torch.arange(5.0, dtype=torch.float64)
    )
    assert data.meta["scalars"] == {"visc": pytest.approx(0.01)} and "frame index" in data.meta["time_unit"]
    torch.save({"x": torch.rand(2, 8, 8) > 0.5, "y": torch.rand(2, 8, 8)}, tmp_path / "mask.pt")
    assert set(read_dataset(tmp_path / "mask.pt").inputs.unique().tolist()) <= {0.0, 1.0}


def test_neuraloperator_refuses_pickled_objects_and_bad_content(tmp_path):
    torch.save(
        {"x": torch.zeros(2, 4, 4), "y": torch.zeros(2, 4, 4), "args": argparse.Namespace(a=1)}, tmp_path / "evil.pt"
    )
    with pytest.raises(DataError, match="weights_only"):
        read_dataset(tmp_path / "evil.pt")
    torch.save({"a": torch.zeros(2, 4, 4)}, tmp_path / "keys.pt")
    with pytest.raises(DataError, match="'x' and 'y'"):
        read_dataset(tmp_path / "keys.pt")
    torch.save({"x": torch.zeros(2, 4, 4), "y": torch.zeros(3, 4, 4)}, tmp_path / "sizes.pt")
    with pytest.raises(DataError, match="disagree"):
        read_dataset(tmp_path / "sizes.pt")
    torch.save({"x": torch.zeros(2, 4, 4), "y": torch.zeros(2, 4)}, tmp_path / "layout.pt")
    with pytest.raises(DataError, match="does not fit"):
        read_dataset(tmp_path / "layout.pt")


def test_pdebench_1d_single_file(tmp_path):
    path = tmp_path / "1D_Advection_Sols_beta0.1.hdf5"
    tensor = np.random.rand(4, 6, 32).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["tensor"] = tensor
        f["x-coordinate"] = centres(32)
        f["t-coordinate"] = np.linspace(0, 0.6, 7, dtype=np.float32)  # t + 1 entries, as PDEBench stores
    data = read_dataset(path)
    assert detect_format(path) == "pdebench" and data.meta["periodic"] and data.meta["periodic_guessed_from_name"]
    assert data.inputs.shape == (4, 1, 32) and data.outputs.shape == (4, 6, 1, 32)
    assert np.array_equal(data.outputs[:, :, 0].numpy(), tensor) and torch.equal(data.inputs, data.outputs[:, 0])
    assert torch.allclose(data.time, torch.arange(6, dtype=torch.float64) * 0.1, atol=1e-6)
    assert data.grid.periodic and data.grid.spacing[0] == pytest.approx(1 / 32)
    assert torch.allclose(data.grid.axes(torch.float64)[0], torch.from_numpy(centres(32)).double(), atol=1e-6)
    assert not read_dataset(path, periodic=False).grid.periodic


def test_pdebench_2d_darcy_and_cfd_single_files(tmp_path):
    darcy = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    nu, u = np.random.rand(3, 8, 8).astype(np.float32), np.random.rand(3, 1, 8, 8).astype(np.float32)
    with h5py.File(darcy, "w") as f:
        f["nu"], f["tensor"] = nu, u
        f["x-coordinate"] = f["y-coordinate"] = centres(8)
    data = read_dataset(darcy)
    assert data.inputs.shape == data.outputs.shape == (3, 1, 8, 8) and data.time is None
    assert np.array_equal(data.inputs[:, 0].numpy(), nu) and np.array_equal(data.outputs.numpy(), u)
    assert data.meta["input_names"] == ["nu"] and not data.grid.periodic

    cfd = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_8_Train.hdf5"
    fields = {key: np.random.rand(2, 3, 8, 8).astype(np.float32) for key in ("density", "pressure", "Vx", "Vy")}
    with h5py.File(cfd, "w") as f:
        for key, value in fields.items():
            f[key] = value
        f["x-coordinate"] = f["y-coordinate"] = centres(8)
        f["t-coordinate"] = np.linspace(0, 1, 4, dtype=np.float32)
    data = read_dataset(cfd)
    assert data.outputs.shape == (2, 3, 4, 8, 8) and data.meta["output_names"] == ["density", "pressure", "Vx", "Vy"]
    assert np.array_equal(data.outputs[:, :, 2].numpy(), fields["Vx"]) and data.grid.periodic


def test_pdebench_2d_per_sample_groups_match_the_diffusion_reaction_grid(tmp_path):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    samples = [np.random.rand(5, 8, 8, 2).astype(np.float32) for _ in range(3)]
    with h5py.File(path, "w") as f:
        for i, sample in enumerate(samples):
            f[f"{i:04d}/data"] = sample
            f[f"{i:04d}/grid/x"] = f[f"{i:04d}/grid/y"] = centres(8, -1.0, 1.0)
            f[f"{i:04d}/grid/t"] = np.linspace(0, 0.2, 5, dtype=np.float32)
    data = read_dataset(path, limit=2)
    assert data.outputs.shape == (2, 5, 2, 8, 8) and data.inputs.shape == (2, 2, 8, 8)
    assert np.array_equal(data.outputs[1].numpy(), np.moveaxis(samples[1], -1, 1))
    assert data.meta["output_names"] == ["channel_0", "channel_1"] and not data.grid.periodic
    expected = DiffusionReaction().grid(8)
    assert np.allclose(data.grid.domain, expected.domain, atol=1e-6) and data.grid.shape == expected.shape


def write_the_well(path, bc=("PERIODIC", "PERIODIC"), grid_type="cartesian"):
    rng = np.random.default_rng(0)
    fields = {
        "pressure": rng.random((2, 4, 8, 6), dtype=np.float32),
        "velocity": rng.random((2, 4, 8, 6, 2), dtype=np.float32),
    }
    with h5py.File(path, "w") as f:
        f.attrs.update(
            dataset_name="toy",
            grid_type=grid_type,
            n_spatial_dims=2,
            n_trajectories=2,
            simulation_parameters=["Re"],
            Re=100.0,
        )
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"] = np.linspace(0, 0.3, 4, dtype=np.float32)
        dims["x"] = np.linspace(0, 1, 8, endpoint=False, dtype=np.float32)
        dims["y"] = np.linspace(0, 2, 6, dtype=np.float32)
        for name, kind in zip(("x", "y"), bc):
            group = f.create_group(f"boundary_conditions/{name}_bc")
            group.attrs.update(bc_type=kind, associated_dims=[name], sample_varying=False, time_varying=False)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["pressure", "viscosity"]
        t0["pressure"] = fields["pressure"]
        t0["pressure"].attrs.update(dim_varying=[True, True], sample_varying=True, time_varying=True)
        t0["viscosity"] = np.ones((8, 6), dtype=np.float32)
        t0["viscosity"].attrs.update(dim_varying=[True, True], sample_varying=False, time_varying=False)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        t1["velocity"] = fields["velocity"]
        t1["velocity"].attrs.update(dim_varying=[True, True], sample_varying=True, time_varying=True)
        f.create_group("t2_fields").attrs["field_names"] = []
    return fields


def test_the_well_layout(tmp_path):
    path = tmp_path / "toy.hdf5"
    fields = write_the_well(path)
    data = read_dataset(path)
    assert detect_format(path) == "the-well"
    assert data.outputs.shape == (2, 4, 3, 8, 6) and data.inputs.shape == (2, 3, 8, 6)
    assert data.meta["output_names"] == ["pressure", "velocity_x", "velocity_y"]
    assert data.meta["skipped_fields"] == ["t0_fields/viscosity"]
    assert data.meta["simulation_parameters"] == {"Re": 100.0} and data.meta["dataset_name"] == "toy"
    assert np.array_equal(data.outputs[:, :, 0].numpy(), fields["pressure"])
    assert np.array_equal(data.outputs[:, :, 2].numpy(), fields["velocity"][..., 1])
    assert data.grid.periodic and data.grid.shape == (8, 6) and data.grid.domain[0] == pytest.approx((0.0, 1.0))
    assert torch.allclose(data.time, torch.linspace(0, 0.3, 4, dtype=torch.float64), atol=1e-6)

    write_the_well(tmp_path / "walls.hdf5", bc=("PERIODIC", "WALL"))
    walls = read_dataset(tmp_path / "walls.hdf5", limit=1)
    assert (
        len(walls) == 1
        and not walls.grid.periodic
        and walls.meta["boundary_conditions"] == {"x": "periodic", "y": "wall"}
    )
    assert walls.grid.domain[1] == pytest.approx((0.0, 2.0))

    write_the_well(tmp_path / "sphere.hdf5", grid_type="spherical")
    with pytest.raises(DataError, match="Cartesian"):
        read_dataset(tmp_path / "sphere.hdf5")
    with pytest.raises(DataError, match="do not pass periodic"):
        read_dataset(path, periodic=True)


def test_oplearn_files_are_read_by_load_fields(tmp_path):
    out = generate_dataset(Doubling(), n=4, resolution=8, out=tmp_path / "d.h5", progress=False)
    data, direct = read_dataset(out), load_fields(out)
    assert detect_format(out) == "oplearn"
    assert (
        torch.equal(data.inputs, direct.inputs)
        and torch.equal(data.outputs, direct.outputs)
        and data.grid == direct.grid
    )


def test_unknown_layouts_are_one_line_errors(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["foo"] = np.zeros(3)
    (tmp_path / "notes.txt").write_text("hello")
    with h5py.File(tmp_path / "uneven.h5", "w") as f:
        f["tensor"] = np.zeros((2, 3, 5), dtype=np.float32)
        f["x-coordinate"] = np.array([0, 0.1, 0.3, 0.4, 0.5], dtype=np.float32)
        f["t-coordinate"] = np.arange(3, dtype=np.float32)
    cases = [
        (tmp_path / "other.h5", {}, "unknown HDF5 layout.*foo"),
        (tmp_path / "notes.txt", {}, "neither an HDF5 file nor a .pt file"),
        (tmp_path / "missing.h5", {}, "does not exist"),
        (tmp_path / "other.h5", {"format": "matlab"}, "unknown dataset format"),
        (tmp_path / "uneven.h5", {}, "not uniformly increasing"),
        (tmp_path / "uneven.h5", {"limit": 5}, "holds 2"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(DataError, match=message) as err:
            read_dataset(path, **kwargs)
        assert "\n" not in str(err.value)
