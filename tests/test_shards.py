"""Sharded dataset generation: shards of one recipe assemble into the unsharded dataset."""

import shutil

import h5py
import pytest
import torch
from helpers import run_cli
from test_data import Crash, CrashingDoubling
from toy_pde import Doubling

from oplearn.cli import main
from oplearn.data.dataset import FieldDataset
from oplearn.data.files import load_fields, read_meta
from oplearn.data.generate import assemble_shards, generate_dataset, parse_shard, shard_path
from oplearn.data.info import describe
from oplearn.errors import DataError

KW = dict(resolution=8, seed=4, chunk_size=2, progress=False)


def _shards(out, count, n=11, **kw):
    return [generate_dataset(Doubling(), n, out=out, shard=(i, count), **{**KW, **kw}) for i in range(count)]


def test_three_shards_equal_the_unsharded_file(tmp_path):
    full = load_fields(generate_dataset(Doubling(), 11, out=tmp_path / "full.h5", **KW))
    paths = _shards(tmp_path / "s.h5", 3)
    assert paths[:2] == [shard_path(tmp_path / "s.h5", 0, 3), shard_path(tmp_path / "s.h5", 1, 3)]
    assert paths[2] == tmp_path / "s.h5", "the last shard to finish assembles"
    # shard 1 of 3 holds chunks 1, 4 (samples 2, 3, 8, 9) and is a dataset of its own
    part = load_fields(paths[1])
    assert torch.equal(part.inputs, full.inputs[[2, 3, 8, 9]])
    with h5py.File(paths[1]) as f:
        assert f["sample_index"][:].tolist() == [2, 3, 8, 9]
    sharded = load_fields(tmp_path / "s.h5")
    assert torch.equal(sharded.inputs, full.inputs) and torch.equal(sharded.outputs, full.outputs)
    meta, ref = read_meta(tmp_path / "s.h5"), read_meta(tmp_path / "full.h5")
    for key in (
        "format",
        "format_version",
        "pde",
        "pde_params",
        "grid",
        "seed",
        "n",
        "chunk_size",
        "n_complete",
        "versions",
    ):
        assert meta[key] == ref[key], key
    assert meta["shard_count"] == 3


def test_assembled_file_reads_everywhere_and_moves_with_its_folder(tmp_path):
    full = load_fields(generate_dataset(Doubling(), 11, out=tmp_path / "full.h5", **KW))
    (tmp_path / "a").mkdir()
    _shards(tmp_path / "a" / "s.h5", 3)
    shutil.move(tmp_path / "a", tmp_path / "b")
    data = FieldDataset(tmp_path / "b" / "s.h5", indices=[10, 0, 5])
    x, y = data[0]
    assert torch.equal(x, full.inputs[10]) and torch.equal(y, full.outputs[10])
    assert torch.equal(FieldDataset(tmp_path / "b" / "s.h5", stride=2)[3][0], full.inputs[3, :, ::2, ::2])
    card = describe(tmp_path / "b" / "s.h5")
    assert "complete (11 of 11 samples)" in card and "(11, 1, 8, 8)" in card
    shard_path(tmp_path / "b" / "s.h5", 2, 3).unlink()
    with pytest.raises(DataError, match="shard-00002-of-00003.h5' is missing"):
        load_fields(tmp_path / "b" / "s.h5")


def test_crashed_shard_resumes_and_then_assembles(tmp_path):
    out = tmp_path / "s.h5"
    generate_dataset(Doubling(), 11, out=out, shard=(0, 2), **KW)
    with pytest.raises(Crash):  # shard 1 holds chunks 1, 3, 5: dies after two of them
        generate_dataset(CrashingDoubling(4), 11, out=out, shard=(1, 2), **KW)
    assert not out.exists() and not shard_path(out, 1, 2).exists()
    with pytest.raises(DataError, match=r"shard\(s\) 1 \(unfinished\) of 2 are missing"):
        assemble_shards(out)
    redo = [Doubling(), Doubling()]
    for i in range(2):  # the whole job is rerun: the finished shard is skipped
        generate_dataset(redo[i], 11, out=out, shard=(i, 2), **KW)
    assert redo[0].solves == 0 and redo[1].solves == 1, "only the missing chunk (the short last one) is computed"
    full = load_fields(generate_dataset(Doubling(), 11, out=tmp_path / "full.h5", **KW))
    assert torch.equal(load_fields(out).inputs, full.inputs)


def test_explicit_assembly_and_mismatched_shards(tmp_path):
    out = tmp_path / "s.h5"
    for i in range(2):
        generate_dataset(Doubling(), 9, out=out, shard=(i, 2), assemble=False, **KW)
    assert not out.exists()
    assert assemble_shards(out) == out and len(load_fields(out)) == 9
    # a shard of another recipe (seed) copied in from elsewhere
    other = tmp_path / "other.h5"
    generate_dataset(Doubling(), 9, out=other, shard=(1, 2), assemble=False, **{**KW, "seed": 5})
    shutil.copy(shard_path(other, 1, 2), shard_path(out, 1, 2))
    with pytest.raises(DataError, match="different recipes") as info:
        assemble_shards(out)
    assert "\n" not in str(info.value) and "seed" in str(info.value)
    with pytest.raises(DataError, match="no shard files"):
        assemble_shards(tmp_path / "none.h5")


def test_shard_syntax_and_torchrun_environment(tmp_path, monkeypatch, capsys):
    assert parse_shard("2/4") == (2, 4) and parse_shard("auto") == "auto"
    for bad in ("2", "4/4", "a/b", "-1/2"):
        with pytest.raises(DataError):
            parse_shard(bad)
    assert (
        main(["generate", "darcy", "--n", "2", "--resolution", "8", "--out", str(tmp_path / "x.h5"), "--shard", "3"])
        == 2
    )
    assert "--shard must look like I/N" in capsys.readouterr().err

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    out = tmp_path / "t.h5"
    assert generate_dataset(Doubling(), 11, out=out, shard="auto", **KW) == shard_path(out, 1, 3)
    assert (
        main(
            [
                "generate",
                "darcy",
                "--n",
                "4",
                "--resolution",
                "8",
                "--chunk-size",
                "2",
                "--out",
                str(tmp_path / "d.h5"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert shard_path(tmp_path / "d.h5", 1, 3).exists() and not shard_path(tmp_path / "d.h5", 0, 3).exists()
    assert "wrote shard 1/3" in capsys.readouterr().out
    monkeypatch.setenv("WORLD_SIZE", "1")  # a single process: no sharding
    assert generate_dataset(Doubling(), 3, out=tmp_path / "one.h5", shard="auto", **KW) == tmp_path / "one.h5"


def test_workers_on_the_command_line(tmp_path):
    run_cli(
        "generate",
        "darcy",
        "--n",
        5,
        "--resolution",
        8,
        "--chunk-size",
        2,
        "--out",
        tmp_path / "p.h5",
        "--workers",
        2,
        "--no-progress",
    )
    run_cli(
        "generate", "darcy", "--n", 5, "--resolution", 8, "--chunk-size", 2, "--out", tmp_path / "s.h5", "--no-progress"
    )
    parallel, serial = load_fields(tmp_path / "p.h5"), load_fields(tmp_path / "s.h5")
    assert torch.equal(parallel.inputs, serial.inputs) and torch.equal(parallel.outputs, serial.outputs)
    assert read_meta(tmp_path / "p.h5")["shard_count"] == 2
