"""The ragged mesh dataset: generation through the chunk/shard pipeline, resuming, lazy
reading, oplearn info, meshio conversion and bad input."""

import h5py
import meshio
import numpy as np
import pytest
import torch
from helpers import one_thread, run_cli  # noqa: F401

from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset
from oplearn.data.info import describe
from oplearn.data.mesh_files import MeshDataset, write_meshes
from oplearn.data.mesh_io import convert_meshes, read_mesh
from oplearn.errors import DataError
from oplearn.geometry.mesh import MeshSample, mesh_domain
from oplearn.pdes import PoissonFEM
from oplearn.wos import Ball

pytestmark = pytest.mark.usefixtures("one_thread")

PDE = PoissonFEM(family={"holes": 1})


def same(a: MeshSample, b: MeshSample) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in ((a.nodes, b.nodes), (a.inputs, b.inputs), (a.outputs, b.outputs), (a.triangles, b.triangles))
    )


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return generate_dataset(
        PDE, 5, 10, tmp_path_factory.mktemp("serial") / "p.h5", seed=4, chunk_size=2, progress=False
    )


def test_samples_match_the_solver_and_read_lazily(serial):
    data = MeshDataset(serial)
    fresh = PDE.generate(2, 10, __import__("oplearn.seeding", fromlist=["generator"]).generator(4, 0))
    assert len(data) == 5 and len({len(data[i].nodes) for i in range(5)}) > 1  # ragged
    for i in range(2):
        assert torch.equal(data[i].nodes, fresh[i].nodes) and torch.equal(data[i].triangles, fresh[i].triangles)
        assert torch.allclose(data[i].outputs.double(), fresh[i].outputs, atol=1e-6)
    sample = data[3]
    assert sample.inputs.dtype == torch.float32 and sample.mesh.boundary.any()
    assert list(data.nodes_per_sample()) == [len(data[i].nodes) for i in range(5)]
    assert len(MeshDataset(serial, indices=[4, 0])) == 2 and same(MeshDataset(serial, indices=[4, 0])[0], data[4])


def test_shards_assemble_to_the_serial_file(serial, tmp_path):
    out = tmp_path / "p.h5"
    for i in (2, 0, 1):
        generate_dataset(PDE, 5, 10, out, seed=4, chunk_size=2, progress=False, shard=(i, 3))
    with h5py.File(out) as f:
        assert f["nodes"].is_virtual and f["node_offsets"].shape == (6,)
    a, b = MeshDataset(serial), MeshDataset(out)
    assert all(same(a[i], b[i]) for i in range(5))


def test_resume_after_a_kill_drops_the_unfinished_chunk(serial, tmp_path, monkeypatch):
    out = tmp_path / "p.h5"
    original, calls = PoissonFEM.generate, []

    def dies_in_the_second_chunk(self, n, resolution, generator=None):
        calls.append(n)
        samples = original(self, n, resolution, generator)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return samples

    monkeypatch.setattr(PoissonFEM, "generate", dies_in_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(PDE, 5, 10, out, seed=4, chunk_size=2, progress=False)
    partial = out.with_name(out.name + ".partial")
    with h5py.File(partial, "r+") as f:  # a killed write may leave rows past n_complete
        assert f.attrs["n_complete"] == 2
        f["nodes"].resize(f["nodes"].shape[0] + 7, axis=0)
    assert "incomplete: 2 of 5" in describe(partial)
    monkeypatch.setattr(PoissonFEM, "generate", original)
    generate_dataset(PDE, 5, 10, out, seed=4, chunk_size=2, progress=False)
    a, b = MeshDataset(serial), MeshDataset(out)
    assert all(same(a[i], b[i]) for i in range(5))


def test_info_and_grid_readers(serial):
    card = describe(serial)
    assert "ragged" in card and "resolution 10" in card and "per sample" in card
    with pytest.raises(DataError, match="meshes"):
        load_fields(serial)


def test_write_and_convert_meshio_files(tmp_path):
    mesh = mesh_domain(Ball((0.5, 0.5), 0.4), 0.1)
    points = np.c_[mesh.nodes.numpy(), np.zeros(len(mesh))]
    quads = np.array([[0, 1, 2, 3]])
    files = []
    for k, suffix in enumerate(("vtu", "xdmf")):
        path = tmp_path / f"m{k}.{suffix}"
        meshio.write(
            path,
            meshio.Mesh(
                points,
                [("triangle", mesh.triangles.numpy())],
                point_data={"u": (k + 1) * mesh.nodes[:, 0].numpy(), "v": mesh.nodes.numpy()},
            ),
        )
        files.append(path)
    read = read_mesh(files[0])
    assert read.nodes.shape == (len(mesh), 2) and torch.equal(read.triangles, mesh.triangles)
    assert set(read.fields) == {"u", "v"} and read.fields["v"].shape == (len(mesh), 2)
    out = convert_meshes(files, tmp_path / "c.h5", inputs=["v"], outputs=["u"])
    data = MeshDataset(out)
    assert data.input_names == ["v_0", "v_1"] and data.output_names == ["u"]
    assert torch.allclose(data[1].outputs[:, 0].double(), 2 * mesh.nodes[:, 0], atol=1e-6)
    assert "imported meshes" in describe(out)
    # quadrilaterals are split into triangles; a point cloud has none
    meshio.write(
        tmp_path / "q.vtu", meshio.Mesh(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]]), [("quad", quads)])
    )
    assert read_mesh(tmp_path / "q.vtu").triangles.shape == (2, 3)
    meshio.write(tmp_path / "cloud.vtu", meshio.Mesh(np.random.rand(10, 3), [("vertex", np.arange(10)[:, None])]))
    assert read_mesh(tmp_path / "cloud.vtu").triangles is None
    with pytest.raises(DataError, match="no nodal field 'p'"):
        convert_meshes(files, tmp_path / "d.h5", inputs=["p"], outputs=["u"])
    # the same through oplearn convert, which records where the meshes came from
    proc = run_cli("convert", *files, tmp_path / "cli.h5", "--inputs", "v", "--outputs", "u")
    assert "wrote 2 mesh samples" in proc.stdout
    assert torch.equal(MeshDataset(tmp_path / "cli.h5")[1].outputs, data[1].outputs)
    assert "converted from" in run_cli("info", tmp_path / "cli.h5").stdout
    proc = run_cli("convert", *files, tmp_path / "e.h5", "--inputs", "v", check=False)
    assert proc.returncode == 2 and "--outputs" in proc.stderr and not (tmp_path / "e.h5").exists()
    (tmp_path / "junk.vtu").write_text("not a mesh")
    with pytest.raises(DataError, match="cannot read"):
        read_mesh(tmp_path / "junk.vtu")


def test_bad_samples_are_refused_and_nothing_is_half_written(tmp_path):
    nodes = torch.rand(4, 2, dtype=torch.float64)
    good = MeshSample(nodes, torch.zeros(4, 1), torch.zeros(4, 1), torch.tensor([[0, 1, 2], [1, 2, 3]]))
    with pytest.raises(DataError, match="triangles indexing"):
        write_meshes(
            tmp_path / "a.h5",
            [MeshSample(nodes, torch.zeros(4, 1), torch.zeros(4, 1), torch.tensor([[0, 1, 9]]))],
            ["a"],
            ["u"],
        )
    with pytest.raises(DataError, match="non-finite"):
        write_meshes(
            tmp_path / "a.h5",
            [good, MeshSample(nodes, torch.full((4, 1), float("nan")), torch.zeros(4, 1))],
            ["a"],
            ["u"],
        )
    assert not (tmp_path / "a.h5").exists()
    path = write_meshes(tmp_path / "b.h5", [good], ["a"], ["u"])
    assert same(MeshDataset(path)[0], MeshSample(nodes, good.inputs, good.outputs, good.triangles))


def test_cli_generates_and_describes_a_mesh_dataset(tmp_path):
    out = tmp_path / "d.h5"
    run_cli(
        "generate",
        "darcy_fem",
        "--n",
        "2",
        "--resolution",
        "8",
        "--out",
        out,
        "--no-progress",
        "--param",
        "family={holes: 0}",
    )
    assert len(MeshDataset(out)) == 2 and "darcy_fem" in describe(out)
    bad = run_cli("generate", "darcy_fem", "--n", "2", "--resolution", "2", "--out", tmp_path / "e.h5", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
