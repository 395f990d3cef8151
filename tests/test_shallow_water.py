"""The sphere: latitude-longitude quadrature, spherical-harmonic transforms, and the shallow-water
solver on the Williamson test cases (steady state, balance, wave speed, time order, mass and energy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.grids import Grid
from oplearn.pdes.shallow_water import HOUR, ShallowWater
from oplearn.pdes.williamson import DAY, GRAVITY, rossby_haurwitz_speed
from oplearn.solvers.stepping import ETDRK4, integrate
from oplearn.sphere.grid import SphereGrid, latitude_quadrature
from oplearn.sphere.harmonics import laplacian_eigenvalues, spherical_transform


@pytest.fixture(autouse=True)
def _one_thread():
    """The transforms here are many small products, which a second thread slows down severalfold
    on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("latitudes", ["equiangular", "legendre-gauss"])
def test_quadrature_integrates_polynomials_in_cos_theta_exactly(latitudes):
    nlat = 9
    theta, w = latitude_quadrature(nlat, latitudes)
    exact_degree = nlat - 1 if latitudes == "equiangular" else 2 * nlat - 1
    x = np.cos(theta)
    for k in range(exact_degree + 1):
        assert np.dot(w, x**k) == pytest.approx((1 - (-1) ** (k + 1)) / (k + 1), abs=1e-13)
    k = exact_degree + 1 + exact_degree % 2  # the first even degree beyond (odd ones vanish by symmetry)
    assert np.dot(w, x**k) != pytest.approx(2 / (k + 1), abs=1e-6)
    grid = SphereGrid.regular(nlat, latitudes)
    assert grid.integrate(torch.ones(grid.shape, dtype=torch.float64)).item() == pytest.approx(4 * math.pi, rel=1e-14)
    assert Grid.from_dict(grid.to_dict()) == grid


@pytest.mark.parametrize("latitudes", ["equiangular", "legendre-gauss"])
def test_transform_round_trip_up_to_the_resolved_degree(latitudes):
    grid = SphereGrid.regular(12, latitudes)
    transform = spherical_transform(grid)
    L = grid.max_degree
    assert L == (6 if latitudes == "equiangular" else 12)
    coefficients = torch.randn(3, L, L, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    coefficients = torch.tril(coefficients)
    coefficients[..., 0] = coefficients[..., 0].real
    field = transform.inverse(coefficients)
    assert torch.allclose(transform(field), coefficients, atol=1e-12)
    # one degree more than the grid resolves does not come back
    bigger = spherical_transform(grid, L + 1)
    extra = torch.zeros(L + 1, L + 1, dtype=torch.complex128)
    extra[L, 1] = 1.0
    assert (bigger(bigger.inverse(extra)) - extra).abs().max() > 1e-3


def test_vector_transform_gives_vorticity_and_divergence():
    grid = SphereGrid.regular(16, "legendre-gauss")
    transform = spherical_transform(grid, 10, vector=True)
    theta, lon = grid.axes(torch.float64)
    lat, lon = torch.meshgrid(math.pi / 2 - theta, lon, indexing="ij")
    f = torch.cos(lat) * torch.sin(lat) * torch.cos(lon)  # a degree-2 harmonic: lap f = -6 f
    # u = k x grad f (stream function f): u = -f_lat, v = f_lon / cos(lat); vorticity = -6 f
    rotational = torch.stack([-torch.cos(2 * lat) * torch.cos(lon), -torch.sin(lat) * torch.sin(lon)])
    # u = grad f (velocity potential f): divergence = -6 f
    divergent = torch.stack([-torch.sin(lat) * torch.sin(lon), torch.cos(2 * lat) * torch.cos(lon)])
    lap = laplacian_eigenvalues(10)
    target = transform(-6 * f)
    for uv, index in ((rotational, 0), (divergent, 1)):
        potentials = transform.vector_forward(uv)
        assert torch.allclose(lap * potentials[index], target, atol=1e-12)
        assert potentials[1 - index].abs().max() < 1e-12
        assert torch.allclose(transform.vector_inverse(potentials), uv, atol=1e-12)


def _run(pde: ShallowWater, hours: float, dt: float, resolution: int = 16):
    model = pde.dynamics(pde.grid(resolution))
    state = pde.initial_state(model, 1)
    stepper = ETDRK4(model.linear, lambda s, t: model.tendency(s))
    return model, state, integrate(stepper, state, [hours * HOUR], dt)[:, 0]


@pytest.mark.parametrize("alpha", [0.0, math.pi / 4])
def test_williamson2_stays_steady(alpha):
    pde = ShallowWater(case="williamson2", alpha=alpha, diffusion_time=0.0, degrees=16)
    model, start, end = _run(pde, 12, 1800.0)
    tendency, scale = model.tendency(start), start.abs().amax(dim=(0, 2, 3)) / HOUR
    # the exact steady state is a discrete steady state (up to the accuracy of the transforms)
    assert (tendency.abs().amax(dim=(0, 2, 3)) < 1e-6 * scale[[0, 1, 1]]).all()
    assert ((end - start).abs().amax(dim=(0, 2, 3)) < 1e-7 * start.abs().amax(dim=(0, 2, 3))[[0, 1, 1]]).all()
    h0, h1 = (model.transform.inverse(s[:, 0]) for s in (start, end))
    assert ((h1 - h0).norm() / h0.norm()).item() < 1e-8  # Williamson's normalised l2 error of h


def test_williamson6_is_balanced_and_travels_east_at_nearly_the_barotropic_speed():
    pde = ShallowWater(case="williamson6", diffusion_time=0.0, degrees=12)
    model, start, end = _run(pde, 24, 1800.0)
    tendency = model.tendency(start)
    assert tendency[:, 2].abs().max() < 1e-5 * tendency[:, 1].abs().max()  # no initial divergence tendency
    row = model.grid.nlat // 4  # about 45 degrees north
    phases = [torch.angle(torch.fft.rfft(model.transform.inverse(s[:, 0])[0, row])[4]) for s in (start, end)]
    speed = -float(phases[1] - phases[0]) / 4 / DAY
    assert speed == pytest.approx(rossby_haurwitz_speed(), rel=0.15)


def test_time_stepping_converges_at_fourth_order_and_energy_with_it():
    pde = ShallowWater(case="williamson6", diffusion_time=0.0, degrees=10)
    model = pde.dynamics(pde.grid(16))
    start = pde.initial_state(model, 1)
    stepper = ETDRK4(model.linear, lambda s, t: model.tendency(s))
    assert stepper.order == 4
    steps = [1800.0, 900.0, 450.0]
    runs = [integrate(stepper, start, [4 * HOUR], dt)[:, 0] for dt in (*steps, 150.0)]
    reference = runs[-1]
    errors = [(run - reference).abs().max().item() for run in runs[:-1]]
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert min(orders) > 3.5, orders
    energy = [model.energy(run).item() for run in runs]
    energy_errors = [abs(e - energy[-1]) for e in energy[:-1]]
    assert energy_errors[0] > energy_errors[1] > energy_errors[2]
    assert math.log2(energy_errors[0] / energy_errors[2]) / 2 > 3.0
    assert abs(energy[-1] / model.energy(start).item() - 1) < 1e-6  # the spatial part at this truncation


def test_mass_is_conserved_to_round_off_over_a_mountain_with_diffusion():
    pde = ShallowWater(case="williamson5", diffusion_time=2.0, degrees=16)
    model, start, end = _run(pde, 24, 1800.0)
    assert abs(model.mass(end) / model.mass(start) - 1).item() < 1e-13
    assert model.transform.inverse(end[:, 0] - start[:, 0]).abs().max() / GRAVITY > 5.0  # the height changed by metres
    assert abs(model.energy(end) / model.energy(start) - 1).item() < 1e-3  # diffusion removes a little


def test_random_flows_are_reproducible_balanced_and_the_same_at_every_resolution():
    pde = ShallowWater(t_final=2.0, n_times=2, dt=1800.0, latitudes="legendre-gauss")
    a = pde.generate(2, 12, torch.Generator().manual_seed(3))
    b = pde.generate(2, 12, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[1].shape == (2, 2, 3, 12, 24)
    fine = pde.sample_input(2, pde.grid(20), torch.Generator().manual_seed(3))
    coarse, fine_coefficients = (
        spherical_transform(grid, 10)(x[:, 1]) for grid, x in ((pde.grid(12), a[0]), (pde.grid(20), fine))
    )
    assert torch.allclose(coarse, fine_coefficients, atol=1e-10)  # the same vorticity
    assert abs(a[0][:, 2]).max() == 0  # no initial divergence
    model = pde.dynamics(pde.grid(12))
    tendency = model.tendency(pde.initial_state(model, 2, torch.Generator().manual_seed(3)))
    assert tendency[:, 2].abs().max() < 1e-5 * tendency[:, 1].abs().max()
    # the residual of the stored frames is the second-order time-difference error
    residuals = []
    for n_times in (2, 4):
        pde = ShallowWater(t_final=2.0, n_times=n_times, dt=600.0, latitudes="legendre-gauss")
        inputs, outputs = pde.generate(1, 12, torch.Generator().manual_seed(3))
        residuals.append(pde.residual(outputs, inputs, pde.grid(12)).abs().max().item())
    assert residuals[1] < residuals[0] / 3


def test_sharded_generation_equals_the_whole(tmp_path):
    pde = make_pde("shallow_water", {"t_final": 1.0, "n_times": 1, "dt": 1800.0})
    whole = generate_dataset(pde, 4, 8, tmp_path / "whole.h5", seed=5, chunk_size=2, progress=False)
    for i in range(2):
        out = generate_dataset(pde, 4, 8, tmp_path / "parts.h5", seed=5, chunk_size=2, progress=False, shard=(i, 2))
    a, b = load_fields(whole), load_fields(out)
    assert isinstance(a.grid, SphereGrid) and a.grid == b.grid
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.outputs, b.outputs)


def test_a_missing_torch_harmonics_names_the_extra(monkeypatch):
    import sys

    from oplearn.errors import OplearnError
    from oplearn.sphere.harmonics import SphericalTransform

    monkeypatch.setitem(sys.modules, "torch_harmonics", None)
    with pytest.raises(OplearnError, match=r"pip install 'oplearn\[sphere\]'"):
        SphericalTransform(SphereGrid.regular(8))
