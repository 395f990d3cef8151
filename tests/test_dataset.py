import pickle
import tracemalloc

import pytest
import torch
from torch.utils.data import DataLoader
from toy_pde import Doubling

from oplearn.data.dataset import FieldDataset, strided_grid
from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset
from oplearn.errors import DataError
from oplearn.grids import Grid, subsample
from oplearn.pdes import DiffusionReaction


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "steady.h5"
    return generate_dataset(Doubling(), n=10, resolution=9, out=path, seed=1, chunk_size=4, progress=False)


def test_samples_equal_load_fields(steady):
    data = load_fields(steady)
    dataset = FieldDataset(steady)
    assert len(dataset) == 10 and dataset.grid == data.grid and dataset.time is None
    for i in range(10):
        x, y = dataset[i]
        assert x.dtype == y.dtype == torch.float32
        assert torch.equal(x, data.inputs[i]) and torch.equal(y, data.outputs[i])
    assert torch.equal(dataset[-1][0], data.inputs[9])
    with pytest.raises(IndexError):
        dataset[10]


def test_stride_and_index_subsets(steady):
    data = load_fields(steady)
    dataset = FieldDataset(steady, stride=2, indices=[7, 2])
    assert len(dataset) == 2 and dataset.grid == Grid((5, 5))
    x, y = dataset[0]
    assert torch.equal(x, subsample(data.inputs[7], 2, 2)) and torch.equal(y, subsample(data.outputs[7], 2, 2))
    assert torch.equal(dataset[1][0], subsample(data.inputs[2], 2, 2))
    with pytest.raises(DataError, match="out of range"):
        FieldDataset(steady, indices=[3, 10])


def test_trajectories_and_a_stride_that_shortens_the_domain(tmp_path):
    pde = DiffusionReaction(t_end=0.1, frames=3)
    path = generate_dataset(pde, n=2, resolution=8, out=tmp_path / "dr.h5", progress=False)
    data = load_fields(path)
    dataset = FieldDataset(path, stride=2)
    x, y = dataset[1]
    assert x.shape == (2, 4, 4) and y.shape == (3, 2, 4, 4)
    assert torch.equal(y, subsample(data.outputs[1], 2, 2)) and torch.equal(dataset.time, data.time)
    # 8 cell centres, every other one kept: the grid ends at the last kept centre
    assert torch.allclose(
        dataset.grid.coordinates(torch.float64), subsample(data.grid.coordinates(torch.float64), 2, 2)
    )


def test_strided_grid_conventions():
    assert strided_grid(Grid((16,), periodic=True), 4) == Grid((4,), periodic=True)
    assert strided_grid(Grid((17, 9)), 2) == Grid((9, 5))
    with pytest.raises(DataError, match="does not divide"):
        strided_grid(Grid((10,), periodic=True), 4)
    with pytest.raises(DataError, match="positive integer"):
        strided_grid(Grid((10,)), 0)


def test_works_in_a_dataloader_with_two_workers(steady):
    data = load_fields(steady)
    dataset = FieldDataset(steady, indices=range(9, -1, -1))
    dataset[0]  # the parent holds an open handle before the workers fork
    restored = pickle.loads(pickle.dumps(dataset))
    assert restored._file is None and torch.equal(restored[0][0], data.inputs[9])
    loader = DataLoader(dataset, batch_size=3, num_workers=2)
    xs, ys = zip(*loader)
    assert torch.equal(torch.cat(xs), data.inputs.flip(0)) and torch.equal(torch.cat(ys), data.outputs.flip(0))


def test_reads_only_what_it_returns(tmp_path):
    path = generate_dataset(Doubling(), n=256, resolution=64, out=tmp_path / "big.h5", chunk_size=64, progress=False)
    file_bytes = path.stat().st_size
    sample_bytes = 2 * 64 * 64 * 4
    assert file_bytes > 100 * sample_bytes
    tracemalloc.start()
    try:
        dataset = FieldDataset(path, stride=2)
        batch = [dataset[i] for i in (0, 100, 255)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch[2][0].shape == (1, 32, 32)
    assert peak < 10 * sample_bytes < file_bytes / 10, (peak, file_bytes)
