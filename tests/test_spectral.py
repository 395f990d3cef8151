import math

import pytest
import torch
from problems import observed_order
from time_problems import SEMILINEAR_ODES, STEPPERS, ode_errors, one_thread  # noqa: F401

from oplearn.derivatives import gradient, time_derivative
from oplearn.grids import Grid
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import ETDRK4, CrankNicolsonHeun, ExponentialEuler, integrate

pytestmark = pytest.mark.usefixtures("one_thread")


def trig(grid: Grid, kx: int, ky: int) -> torch.Tensor:
    x, y = grid.coordinates(torch.float64)
    lx, ly = grid.lengths
    return torch.sin(2 * math.pi * (kx * x / lx + ky * y / ly) + 0.3)


def test_wavenumbers_follow_the_rfft_layout():
    grid = Grid((6, 8), domain=((0.0, 2.0), (0.0, 1.0)), periodic=True)
    fourier = Fourier(grid)
    assert fourier.spectral_shape == (6, 5) and fourier.forward(torch.zeros(3, 6, 8)).shape == (3, 6, 5)
    assert torch.allclose(fourier.k[0].flatten(), math.pi * torch.tensor([0, 1, 2, -3, -2, -1.0], dtype=torch.float64))
    assert torch.allclose(fourier.k[1].flatten(), 2 * math.pi * torch.arange(5, dtype=torch.float64))
    assert fourier.ik[0].flatten()[3] == 0 and fourier.ik[1].flatten()[4] == 0  # Nyquist: no derivative
    assert fourier.k2[3, 4] == pytest.approx((3 * math.pi) ** 2 + (8 * math.pi) ** 2)
    # 2/3 rule: keep 3|j| < n, i.e. |j| <= 1 of 6 and |j| <= 2 of 8
    assert fourier.mask[:, 0].tolist() == [True, True, False, False, False, True]
    assert fourier.mask[0].tolist() == [True, True, True, False, False]
    assert Fourier(grid, dealias=False).mask.all()
    with pytest.raises(ValueError, match="periodic"):
        Fourier(Grid((8, 8)))


def test_symbols_differentiate_trigonometric_fields_exactly():
    grid = Grid((16, 12), domain=((0.0, 1.0), (-1.0, 2.0)), periodic=True)
    fourier = Fourier(grid)
    u = trig(grid, 3, 2)
    u_hat = fourier.forward(u)
    assert torch.allclose(fourier.inverse(u_hat), u, atol=1e-14)
    k = [2 * math.pi * 3, 2 * math.pi * 2 / 3]
    x, y = grid.coordinates(torch.float64)
    cos = torch.cos(2 * math.pi * (3 * x + 2 * y / 3) + 0.3)
    for d in range(2):
        assert torch.allclose(fourier.inverse(fourier.ik[d] * u_hat), k[d] * cos, atol=1e-11)
    # the spectral gradient of derivatives.py agrees
    assert torch.allclose(gradient(u, grid), torch.stack([k[0] * cos, k[1] * cos]), atol=1e-11)
    assert torch.allclose(fourier.inverse(-fourier.k2 * u_hat), -(k[0] ** 2 + k[1] ** 2) * u, atol=1e-9)
    v = u + 2.5  # the mean is lost by the inverse Laplacian, nothing else
    psi = fourier.inverse(fourier.inverse_laplacian(fourier.forward(v)))
    assert abs(psi.mean()) < 1e-14 and torch.allclose(psi, -u / (k[0] ** 2 + k[1] ** 2), atol=1e-14)


def test_dealiased_product_has_no_aliasing_error():
    # On n = 12 the 2/3 band is |j| <= 3. Two factors at j = 3 multiply into j = 0 and j = 6;
    # the truncated product keeps exactly the band part (the constant).
    grid = Grid((12,), periodic=True)
    fourier = Fourier(grid)
    (x,) = grid.coordinates(torch.float64)
    a, b = torch.cos(2 * math.pi * 3 * x), torch.sin(2 * math.pi * 3 * x + 1)
    product = fourier.dealias(fourier.forward(a * b))
    exact = 0.5 * torch.sin(torch.tensor(1.0, dtype=torch.float64))  # a b = (sin(12 pi x + 1) + sin(1)) / 2
    assert torch.allclose(fourier.inverse(product), exact.expand(12), atol=1e-14)
    # without the rule the j = 6 term survives as the Nyquist mode (-1)^j sin(1) / 2
    assert not torch.allclose(fourier.inverse(fourier.forward(a * b)), exact.expand(12), atol=1e-3)


@pytest.mark.parametrize("stepper", STEPPERS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("ode", SEMILINEAR_ODES, ids=lambda o: o.name)
def test_observed_order_matches_the_stated_order(stepper, ode):
    steps, errors = ode_errors(stepper, ode)
    order = observed_order(steps, errors)
    assert stepper.order - 0.15 < order < stepper.order + 0.2, (order, errors)


def test_linear_equations_are_integrated_exactly_by_the_exponential_steppers():
    linear = torch.tensor([-3.0 + 40j, 25j, -0.5], dtype=torch.complex128)
    u0 = torch.tensor([[1.0, 2.0 - 1j, 0.5]], dtype=torch.complex128)
    times = [0.3, 1.0, 2.5]
    exact = torch.stack([u0 * torch.exp(linear * t) for t in times], dim=1)
    for stepper in (ExponentialEuler, ETDRK4):
        assert torch.allclose(integrate(stepper(linear, None), u0, times, None), exact, rtol=1e-13, atol=1e-14)
    # Crank-Nicolson is only second order for the same problem
    assert not torch.allclose(integrate(CrankNicolsonHeun(linear, None), u0, times, 0.1), exact, atol=1e-3)


def test_integrate_hits_every_output_time_and_repeats_equal_ones():
    calls = []

    def nonlinear(u, t):
        calls.append(t)
        return torch.ones_like(u)

    stepper = ExponentialEuler(torch.zeros(1, dtype=torch.float64), nonlinear)  # u' = 1
    u = integrate(stepper, torch.zeros(2, 1, dtype=torch.float64), [0.0, 0.25, 0.25, 1.0], dt=0.3, t0=0.0)
    assert u.shape == (2, 4, 1)
    assert torch.allclose(u[0, :, 0], torch.tensor([0.0, 0.25, 0.25, 1.0], dtype=torch.float64), atol=1e-15)
    # 0.25 in one step, 0.75 in three steps of 0.25; no step beyond an output time
    assert calls == pytest.approx([0.0, 0.25, 0.5, 0.75])
    observed = integrate(stepper, torch.zeros(2, 1, dtype=torch.float64), [1.0], dt=0.5, observe=lambda v: 2 * v)
    assert torch.allclose(observed, torch.full((2, 1, 1), 2.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-decreasing"):
        integrate(stepper, torch.zeros(1, 1), [0.5, 0.2], dt=0.1)
    with pytest.raises(ValueError, match="time step"):
        integrate(stepper, torch.zeros(1, 1), [0.5], dt=0.0)


def test_time_derivative_is_second_order_on_uneven_frames():
    errors, spacings = [], []
    for n in (10, 20, 40):
        t = torch.linspace(0, 1, n, dtype=torch.float64) ** 1.5  # uneven spacing
        frames = torch.sin(3 * t)[None, :, None] * torch.ones(2, 1, 5, dtype=torch.float64)
        derivative = time_derivative(frames, t, dim=1)
        assert derivative.shape == frames.shape
        errors.append((derivative[0, :, 0] - 3 * torch.cos(3 * t)).abs().max().item())
        spacings.append(1 / n)
    assert 1.8 < observed_order(spacings, errors) < 2.3, errors
    with pytest.raises(ValueError, match="at least 3"):
        time_derivative(torch.zeros(1, 2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        time_derivative(torch.zeros(1, 3, 4), torch.tensor([0.0, 1.0, 1.0]))
