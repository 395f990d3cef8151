import math

import pytest
import torch
from test_spectral_conv import band_limited
from torch import nn

from oplearn.layers.local import BumpKernel, DifferentialConv, LocalIntegralConv, grid_spacing
from oplearn.models import FNO, count_parameters
from oplearn.models.local_fno import LocalFNO, LocalFNOConfig
from oplearn.pdes import Darcy


class Indicator(nn.Module):
    """The kernel k(z) = 1 on the closed ball |z| <= r (one input, one output channel)."""

    def __init__(self, radius: float) -> None:
        super().__init__()
        self.radius = radius

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        return (offsets.norm(dim=-1) <= self.radius * (1 + 1e-12)).to(offsets.dtype)[None, None]


def coarse_gaps(outputs: list[torch.Tensor]) -> list[float]:
    """Relative gaps between outputs at successive doublings, on the coarsest grid's nodes."""
    coarse = [y[..., :: 2**i, :: 2**i] for i, y in enumerate(outputs)]
    return [((a - b).norm() / b.norm()).item() for a, b in zip(coarse, coarse[1:])]


def sine_error(layer: DifferentialConv, n: int, stencil: list[float], periodic: bool) -> float:
    """Max error of the layer with a hand-set stencil against d/dx sin(2 pi x), at interior nodes."""
    x = torch.arange(n, dtype=torch.float64) / (n if periodic else n - 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(stencil, dtype=torch.float64).view(1, 1, 3))
    y = layer(torch.sin(2 * math.pi * x)[None, None])[0, 0]
    return (y - 2 * math.pi * torch.cos(2 * math.pi * x))[1:-1].abs().max().item()


@pytest.mark.parametrize("periodic", [True, False])
def test_differential_conv_hand_stencils_converge_at_their_order(periodic):
    layer = DifferentialConv(1, 1, n_dim=1, periodic=periodic).double()
    sizes = (16, 32, 64, 128)
    central = [sine_error(layer, n, [-0.5, 0.0, 0.5], periodic) for n in sizes]
    one_sided = [sine_error(layer, n, [-1.0, 1.0, 0.0], periodic) for n in sizes]
    for coarse, fine in zip(central, central[1:]):
        assert 3.6 < coarse / fine < 4.4  # second order
    for coarse, fine in zip(one_sided, one_sided[1:]):
        assert 1.8 < coarse / fine < 2.2  # first order


def test_differential_conv_stencils_sum_to_zero_and_annihilate_constants():
    layer = DifferentialConv(3, 2, n_dim=2, periodic=False)
    assert layer.stencil().sum(dim=(2, 3)).abs().max() < 1e-6
    assert layer(torch.full((1, 3, 7, 9), 5.0)).abs().max() < 1e-4  # replicate padding: exact at the boundary too


def test_differential_conv_learned_outputs_converge():
    torch.manual_seed(0)
    layer = DifferentialConv(3, 2, n_dim=2).double()
    outputs = [layer(band_limited(n, kmax=4)) for n in (32, 64, 128)]
    gap_coarse, gap_fine = coarse_gaps(outputs)
    assert gap_fine < 0.6 * gap_coarse  # first order: ratio about 1/2


def test_local_integral_of_indicator_1d_converges_to_integral_over_interval():
    """int_{|z|<r} sin(2 pi (x + z)) dz = sin(2 pi x) sin(2 pi r) / pi; the Riemann sum with
    both end points is first-order accurate."""
    r = 0.125
    layer = LocalIntegralConv(1, 1, n_dim=1, radius=r, kernel=Indicator(r))
    errors = []
    for n in (16, 32, 64, 128):
        x = torch.arange(n, dtype=torch.float64) / n
        exact = torch.sin(2 * math.pi * x) * math.sin(2 * math.pi * r) / math.pi
        errors.append((layer(torch.sin(2 * math.pi * x)[None, None])[0, 0] - exact).abs().max().item())
    for coarse, fine in zip(errors, errors[1:]):
        assert 1.8 < coarse / fine < 2.2


def test_local_integral_of_indicator_2d_converges_to_integral_over_disk():
    """int_{|z|<r} cos(2 pi (x + z_1)) dz = r J_1(2 pi r) cos(2 pi x). Lattice points in a disk
    make the error erratic (Gauss circle problem), but it falls by orders of magnitude."""
    r = 0.2
    layer = LocalIntegralConv(1, 1, n_dim=2, radius=r, kernel=Indicator(r))
    errors = []
    for n in (16, 64, 128):
        x = torch.arange(n, dtype=torch.float64) / n
        X, _ = torch.meshgrid(x, x, indexing="ij")
        j1 = torch.special.bessel_j1(torch.tensor(2 * math.pi * r, dtype=torch.float64))
        exact = r * j1 * torch.cos(2 * math.pi * X)
        errors.append((layer(torch.cos(2 * math.pi * X)[None, None])[0, 0] - exact).abs().max().item())
    assert errors[1] < errors[0] / 5 and errors[2] < errors[0] / 50


def test_local_integral_stencil_grows_with_resolution_and_respects_radius():
    layer = LocalIntegralConv(2, 3, n_dim=2, radius=0.1)
    assert layer.halo(grid_spacing((32, 32), 1.0, True)) == (3, 3)
    assert layer.halo(grid_spacing((128, 128), 1.0, True)) == (12, 12)
    assert layer.halo(grid_spacing((21, 41), 2.0, False)) == (1, 2)
    offsets = layer.offsets(grid_spacing((64, 64), 1.0, True))
    kernel = layer.kernel(offsets)
    assert kernel.shape == (3, 2, 13, 13)
    assert kernel[:, :, offsets.norm(dim=-1) >= 0.1].abs().max() == 0


def test_local_integral_learned_outputs_converge():
    torch.manual_seed(0)
    layer = LocalIntegralConv(3, 2, n_dim=2, radius=0.15).double()
    outputs = [layer(band_limited(n, kmax=4)) for n in (32, 64, 128)]
    gap_coarse, gap_fine = coarse_gaps(outputs)
    assert gap_fine < 0.6 * gap_coarse


def test_bump_kernel_is_continuous_and_compactly_supported():
    kernel = BumpKernel(1, 1, n_dim=1, radius=1.0, n_radial=3)
    with torch.no_grad():
        kernel.coefficients.fill_(1.0)
    z = torch.linspace(-1.5, 1.5, 3001)[:, None]
    k = kernel(z)[0, 0]
    assert k[z[:, 0].abs() >= 1].abs().max() == 0
    assert (k[1:] - k[:-1]).abs().max() < 0.01  # steps of 1e-3 in z: no jumps


@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("spatial", [(20,), (12, 10), (6, 7, 8)])
def test_layer_shapes_1d_2d_3d(spatial, periodic):
    d = len(spatial)
    x = torch.randn(2, 3, *spatial)
    assert DifferentialConv(3, 4, n_dim=d, periodic=periodic)(x).shape == (2, 4, *spatial)
    assert LocalIntegralConv(3, 4, n_dim=d, radius=0.3, periodic=periodic)(x).shape == (2, 4, *spatial)


def test_layer_errors():
    with pytest.raises(ValueError, match="too many for the periodic grid"):
        LocalIntegralConv(1, 1, n_dim=1, radius=1.0)(torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="expects"):
        DifferentialConv(2, 1, n_dim=2)(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="domain_length"):
        DifferentialConv(1, 1, n_dim=2, domain_length=(1.0,))


@pytest.mark.parametrize(
    "modes, spatial, padding", [(4, (16,), 0.0), ((3, 3), (10, 12), 0.0), ((3, 3), (10, 12), 0.25), (2, (6, 6, 5), 0.0)]
)
def test_local_fno_shapes(modes, spatial, padding):
    model = LocalFNO(
        3, 2, modes, radius=0.2, width=6, n_layers=2, n_dim=len(spatial), projection_channels=8, padding=padding
    )
    assert model.periodic == (padding == 0)
    assert model(torch.randn(2, 3, *spatial)).shape == (2, 2, *spatial)


def test_local_fno_gradients_reach_every_parameter():
    model = LocalFNO(3, 1, (3, 3), radius=0.2, width=6, n_layers=2, projection_channels=8, padding=0.1)
    model(torch.randn(2, 3, 12, 12)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_local_fno_outputs_converge_across_resolutions():
    torch.manual_seed(0)
    model = LocalFNO(3, 2, 6, radius=0.1, width=6, n_layers=2, projection_channels=8).double()
    with torch.no_grad():
        outputs = [model(band_limited(n, kmax=4)) for n in (32, 64, 128)]
    gap_coarse, gap_fine = coarse_gaps(outputs)
    assert gap_fine < 0.6 * gap_coarse


def test_local_fno_parameter_count_and_config():
    width, c_in, n_dim = 8, 3, 2
    fno_only = LocalFNOConfig(
        modes=4, width=width, n_layers=2, projection_channels=16, differential=False, local_integral=False
    )
    full = fno_only.model_copy(update=dict(differential=True, local_integral=True))
    base = count_parameters(fno_only.build(c_in, 1, n_dim))
    differential = 2 * width * width * 3**n_dim
    local = 2 * width * width * 4 * (n_dim + 1)  # 4 radial bumps times (1 + n_dim) angular factors
    model = full.build(c_in, 1, n_dim)
    assert count_parameters(model) == base + differential + local
    assert model(torch.randn(2, c_in, 9, 9)).shape == (2, 1, 9, 9)


def test_differential_conv_reference_spacing_only_rescales():
    torch.manual_seed(0)
    unit = DifferentialConv(2, 3, n_dim=2, periodic=False)
    scaled = DifferentialConv(2, 3, n_dim=2, periodic=False, reference_spacing=0.25)
    scaled.load_state_dict(unit.state_dict())
    x = torch.randn(1, 2, 9, 9)
    torch.testing.assert_close(scaled(x), 0.25 * unit(x))
    with pytest.raises(ValueError, match="reference_spacing"):
        DifferentialConv(1, 1, reference_spacing=0.0)


def test_local_fno_differential_branch_does_not_see_the_padding_jump():
    """One block on a constant input: the lifted field is constant on the domain and zero in
    the padding. The differential branch acts on the domain only, so it adds exactly nothing."""
    kw = dict(width=6, n_layers=1, projection_channels=8, padding=0.25)
    torch.manual_seed(0)
    fno = FNO(2, 1, 3, **kw)
    torch.manual_seed(0)
    local = LocalFNO(2, 1, 3, local_integral=False, **kw)
    x = torch.ones(2, 2, 12, 12)
    torch.testing.assert_close(local(x), fno(x))


def darcy_problem(n: int = 32, samples: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Thresholded Darcy coefficients (values 3 and 12, raw) and their normalised solutions."""
    a, u = Darcy().generate(samples, n, torch.Generator().manual_seed(0))
    return a.float(), ((u - u.mean()) / u.std()).float()


def test_local_fno_starts_at_the_scale_of_the_fno_on_darcy_inputs():
    """With the stencils in grid units (reference_spacing=1) the jumps 3 <-> 12 of the
    coefficient blow the output up by orders of magnitude; in units of 1/64 they do not."""
    a, _ = darcy_problem()
    kw = dict(width=8, n_layers=2, projection_channels=16, padding=0.125)
    torch.manual_seed(0)
    fno_norm = FNO(1, 1, 6, **kw)(a).norm()
    ratios = {}
    for h0 in (1 / 64, 1.0):
        torch.manual_seed(0)
        ratios[h0] = (LocalFNO(1, 1, 6, reference_spacing=h0, **kw)(a).norm() / fno_norm).item()
    assert 1 / 3 < ratios[1 / 64] < 3
    assert ratios[1.0] > 30


def test_local_fno_trains_as_well_as_the_fno_on_darcy_inputs():
    a, target = darcy_problem()
    x = (a - a.mean()) / a.std()
    kw = dict(width=8, n_layers=2, projection_channels=16, padding=0.125)

    def fit(model: nn.Module, steps: int = 40) -> float:
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = (model(x) - target).square().mean()
            loss.backward()
            optimizer.step()
        return loss.item()

    torch.manual_seed(0)
    fno_loss = fit(FNO(1, 1, 6, **kw))
    torch.manual_seed(0)
    local_loss = fit(LocalFNO(1, 1, 6, radius=0.1, **kw))
    assert local_loss <= 1.5 * fno_loss
