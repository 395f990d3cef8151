"""The SFNO: shapes, symmetry under rotations of the sphere, resolution, and the sphere through
train / evaluate / report (one_step and map) with latitude-band errors, next to the FNO baseline."""

from __future__ import annotations

import json
import math

import pytest
import torch

from oplearn.cli import main
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.layers.spherical import SphericalConv
from oplearn.models import FNO, SFNO
from oplearn.sphere.grid import SphereGrid
from oplearn.sphere.metrics import LATITUDE_BANDS, area_relative_l2, band_masks


@pytest.fixture(autouse=True)
def _one_thread():
    """Many small transforms: a second thread slows them down on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _half_turn(x: torch.Tensor) -> torch.Tensor:
    """The rotation by pi about the axis through latitude 0, longitude 0: (lat, lon) -> (-lat, -lon),
    which maps the nodes of a latitude-longitude grid (symmetric about the equator) to nodes."""
    return torch.roll(x.flip(-2).flip(-1), 1, dims=-1)


def _smooth(grid: SphereGrid, batch: int = 2, channels: int = 3) -> torch.Tensor:
    """Band-limited fields (degree <= 3 polynomials of x, y, z) with random coefficients."""
    theta, lon = grid.axes(torch.float64)
    theta, lon = torch.meshgrid(theta, lon, indexing="ij")
    xyz = torch.stack([torch.sin(theta) * torch.cos(lon), torch.sin(theta) * torch.sin(lon), torch.cos(theta)])
    monomials = torch.stack(
        [
            torch.ones_like(theta),
            *xyz,
            *(xyz[i] * xyz[j] for i in range(3) for j in range(i, 3)),
            xyz[0] * xyz[1] * xyz[2],
            xyz[2] ** 3,
        ]
    )
    weights = torch.randn(
        batch, channels, len(monomials), generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    return torch.einsum("bck,kij->bcij", weights, monomials)


@pytest.mark.parametrize("latitudes", ["equiangular", "legendre-gauss"])
def test_sfno_maps_fields_on_the_sphere_and_its_parameters_scale_with_modes(latitudes):
    model = SFNO(3, 2, modes=6, width=8, n_layers=2, projection_channels=16, latitudes=latitudes)
    x = torch.randn(4, 3, 16, 32)
    y = model(x)
    assert y.shape == (4, 2, 16, 32) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    per_degree = sum(layer.weight.numel() for layer in model.spectral)
    assert per_degree == 2 * 8 * 8 * 6
    with pytest.raises(ValueError, match="resolves degrees l < 4"):
        model(torch.randn(1, 3, 8, 16) if latitudes == "equiangular" else torch.randn(1, 3, 4, 8))


def test_zonal_sfno_commutes_with_rotations_that_map_the_grid_to_itself_and_others_only_with_shifts():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 17, 32, dtype=torch.float64)
    sfno = SFNO(3, 3, modes=8, width=8, n_layers=2, projection_channels=16).double()
    diagonal = SFNO(3, 3, modes=8, width=8, n_layers=2, projection_channels=16, kernel="diagonal").double()
    fno = FNO(3, 3, modes=(6, 6), width=8, n_layers=2, projection_channels=16).double()
    assert diagonal.spectral[0].weight.numel() == 2 * 8 * sfno.spectral[0].weight.numel()
    for model, equivariant in ((sfno, True), (diagonal, False), (fno, False)):
        with torch.no_grad():
            shifted = (model(torch.roll(x, 5, dims=-1)) - torch.roll(model(x), 5, dims=-1)).abs().max()
            turned = (model(_half_turn(x)) - _half_turn(model(x))).abs().max() / model(x).abs().max()
        assert shifted < 1e-10  # both are equivariant to longitude shifts
        assert (turned < 1e-10) if equivariant else (turned > 1e-2)


def test_spherical_convolution_gives_the_same_output_at_every_resolution():
    coarse, fine = SphereGrid((17, 32)), SphereGrid((33, 64))  # every second node of the fine grid is a coarse node
    layer = SphericalConv(3, 2, degrees=6).double()
    with torch.no_grad():
        a, b = layer(_smooth(coarse)), layer(_smooth(fine))
    assert torch.allclose(a, b[..., ::2, ::2], atol=1e-10)
    model = SFNO(3, 2, modes=6, width=8, n_layers=2, projection_channels=16).double()
    with torch.no_grad():
        a, b = model(_smooth(coarse)), model(_smooth(fine))[..., ::2, ::2]
    assert ((a - b).norm() / a.norm()) < 0.05  # the pointwise nonlinearity adds small aliasing


def test_latitude_bands_cover_the_sphere_and_weigh_by_area():
    grid = SphereGrid.regular(16, "legendre-gauss")
    masks = band_masks(grid)
    assert list(masks) == list(LATITUDE_BANDS) and sum(m.long() for m in masks.values()).eq(1).all()
    true = torch.ones(1, 1, *grid.shape, dtype=torch.float64)
    pred = true.clone()
    pred[..., masks["60N-90N"], :] += 1.0  # error 1 on the northern cap only
    cap = grid.area_weights()[masks["60N-90N"]].sum() / (4 * math.pi)
    assert area_relative_l2(pred, true, grid).item() == pytest.approx(math.sqrt(cap), rel=1e-12)
    assert area_relative_l2(pred, true, grid, masks["60N-90N"]).item() == pytest.approx(1.0)
    assert area_relative_l2(pred, true, grid, masks["30S-30N"]).item() == 0.0


@pytest.fixture(scope="module")
def swe_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("swe")
    pde = make_pde("shallow_water", {"t_final": 6.0, "n_times": 4, "dt": 1800.0})
    return (
        generate_dataset(pde, 16, 16, root / "train.h5", seed=0, progress=False),
        generate_dataset(pde, 4, 16, root / "test.h5", seed=1, progress=False),
    )


@pytest.mark.parametrize("config, task", [("swe_sfno", "one_step"), ("swe_fno", "one_step"), ("swe_sfno", "map")])
def test_train_evaluate_report_on_the_sphere(config, task, swe_files, tmp_path, capsys):
    train_file, test_file = swe_files
    sizes = {"swe_sfno": ["model.modes=8"], "swe_fno": ["model.modes=6"]}[config]
    settings = [
        f"data.path={train_file}",
        "data.generate=null",
        f"data.test=[{{path: {test_file}}}]",
        "data.n_train=12",
        "data.n_val=4",
        "data.batch_size=4",
        "train.epochs=6",
        f"train.task={task}",
        "train.threads=1",
        "model.width=16",
        "model.n_layers=2",
        *sizes,
    ]
    run = tmp_path / "run"
    assert (
        main(["train", config, "--out", str(run), *(a for s in settings for a in ("--set", s)), "--no-progress"]) == 0
    )
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [entry["train_loss"] for entry in log if "train_loss" in entry]
    assert losses[-1] < losses[0]  # training decreases the loss
    assert main(["evaluate", str(run)]) == 0
    (row,) = json.loads((run / "metrics.json").read_text())["results"]
    bands = row["latitude_bands"]
    assert set(bands) == {"global", *LATITUDE_BANDS} and all(0 < v < 10 for v in bands.values())
    assert main(["report", str(run)]) == 0
    report = (run / "report" / "report.md").read_text()
    assert (
        "Relative L2 per latitude band (area-weighted)" in report and (run / "report" / "latitude_bands.png").exists()
    )
