"""Lazy training data (data.lazy): batched reads, streamed normalisers, the same weights as in memory."""

import os
import subprocess
import sys

import pytest
import torch
from helpers import SRC, tiny_config

from oplearn.config import load_config
from oplearn.data.dataset import FieldDataset
from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.data.source import LazySource
from oplearn.layers.normalization import ChannelMoments, ChannelNormalizer
from oplearn.training.checkpoint import load_checkpoint
from oplearn.training.run import LAST, train


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """40 Darcy samples at 16^2 generated as 2 shards, read through the assembled (virtual) file."""
    path = tmp_path_factory.mktemp("data") / "darcy.h5"
    for i in range(2):
        generate_dataset(make_pde("darcy"), 40, 16, path, seed=0, chunk_size=8, shard=(i, 2), progress=False)
    return path


def assert_same_weights(a, b, rtol=1e-5, atol=1e-6):
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=rtol, atol=atol, msg=key)


def test_batched_reads_follow_the_requested_order(sharded):
    data = load_fields(sharded)
    dataset = FieldDataset(sharded, indices=range(10, 40))
    for positions in ([3, 0, 29, 3], [5, 6, 7, 8], []):  # any order with a repeat, a consecutive run, nothing
        x, y = dataset.read(torch.tensor(positions, dtype=torch.long))
        rows = torch.tensor(positions, dtype=torch.long) + 10
        assert torch.equal(x, data.inputs[rows]) and torch.equal(y, data.outputs[rows])
    with pytest.raises(IndexError):
        dataset.read([30])


def test_streamed_moments_equal_the_whole_data():
    x = torch.randn(37, 3, 5, 4, dtype=torch.float64) * torch.tensor([1.0, 1e3, 1e-3]).view(1, 3, 1, 1) + 1e4
    moments = ChannelMoments.of(x.split(5))
    torch.testing.assert_close(moments.mean, x.mean(dim=(0, 2, 3)), rtol=1e-13, atol=0)
    torch.testing.assert_close(moments.std, x.std(dim=(0, 2, 3), unbiased=False), rtol=1e-9, atol=0)
    whole, streamed = ChannelNormalizer(3).fit(x), ChannelNormalizer(3).fit_moments(moments)
    torch.testing.assert_close(streamed.mean, whole.mean)
    torch.testing.assert_close(streamed.std, whole.std)


def test_lazy_source_reads_only_what_is_asked(sharded, monkeypatch):
    source = LazySource(sharded, 0, 32, lambda data: data)
    rows = []
    real = FieldDataset.read

    def spy(self, positions):
        rows.append(torch.as_tensor(positions).tolist())
        return real(self, positions)

    monkeypatch.setattr(FieldDataset, "read", spy)
    batch = source.read(torch.tensor([7, 2]))
    assert rows == [[7, 2]] and len(batch) == 2
    assert [len(chunk) for chunk in source.chunks(10)] == [10, 10, 10, 2]


def test_lazy_training_gives_the_in_memory_weights(tmp_path, sharded, monkeypatch):
    config_path = tiny_config(tmp_path / "c.yaml", sharded, epochs=2)
    train(load_config(config_path), tmp_path / "memory", progress=False)
    reads = []
    real = FieldDataset.read
    monkeypatch.setattr(FieldDataset, "read", lambda self, p: reads.append(len(p)) or real(self, p))
    train(load_config(config_path, ["data.lazy=true"]), tmp_path / "lazy", progress=False)
    assert max(reads) <= 8, "never more than a batch (or a chunk of the streaming passes) at a time"
    assert_same_weights(load_checkpoint(tmp_path / "memory" / LAST), load_checkpoint(tmp_path / "lazy" / LAST))


def test_lazy_one_step_training_gives_the_in_memory_weights(tmp_path):
    path = generate_dataset(
        make_pde("advection", {"n_times": 6, "t_final": 0.3}), 12, 16, tmp_path / "adv.h5", seed=0, progress=False
    )
    model = {"name": "fno", "modes": 4, "width": 8, "n_layers": 2, "projection_channels": 16}
    config_path = tiny_config(
        tmp_path / "c.yaml", path, epochs=2, model=model, task="one_step", history=2, pushforward=1
    )
    train(load_config(config_path, ["data.n_val=4"]), tmp_path / "memory", progress=False)
    train(load_config(config_path, ["data.n_val=4", "data.lazy=true"]), tmp_path / "lazy", progress=False)
    memory, lazy = load_checkpoint(tmp_path / "memory" / LAST), load_checkpoint(tmp_path / "lazy" / LAST)
    assert_same_weights(memory, lazy)
    assert memory["best_val"] == pytest.approx(lazy["best_val"], rel=1e-5)


def test_two_processes_reading_sharded_data_lazily_match_one_process(tmp_path, sharded):
    config_path = tiny_config(tmp_path / "c.yaml", sharded, epochs=2)  # global batch 8: 4 per process with 2
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
        "--set",
        "data.lazy=true",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    single, ddp = load_checkpoint(tmp_path / "single" / LAST), load_checkpoint(tmp_path / "ddp" / LAST)
    assert ddp["epoch"] == 2
    assert_same_weights(single, ddp, rtol=1e-4, atol=1e-5)
