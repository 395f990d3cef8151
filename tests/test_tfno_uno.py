import math

import pytest
import torch
from test_spectral_conv import band_limited

from oplearn.layers.factorized import FactorizedSpectralConv, cp_rank, tucker_ranks
from oplearn.layers.spectral import SpectralConv
from oplearn.models import FNO, count_parameters
from oplearn.models.tfno import TFNO, TFNOConfig
from oplearn.models.uno import UNO, UNOConfig, fourier_resample


def convergence_gaps(model: torch.nn.Module) -> tuple[float, float]:
    """Relative gaps d(32, 64), d(64, 128) of the outputs on one band-limited field, compared
    on the 32^2 nodes."""
    fields = {n: band_limited(n, kmax=4, channels=model.in_channels) for n in (32, 64, 128)}
    out = {n: model(a)[..., :: n // 32, :: n // 32] for n, a in fields.items()}
    gap = lambda a, b: ((out[a] - out[b]).norm() / out[b].norm()).item()
    return gap(32, 64), gap(64, 128)


# ----------------------------------------------------------------------------- factorised layer


@pytest.mark.parametrize("factorization", ["tucker", "cp"])
def test_reconstruction_drives_the_dense_path(factorization):
    layer = FactorizedSpectralConv(3, 4, (3, 4), factorization=factorization, rank=0.3).double()
    dense = SpectralConv(3, 4, (3, 4)).double()
    with torch.no_grad():
        dense.weight.copy_(layer._weight())
    x = torch.randn(2, 3, 10, 9, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dense(x))
    assert "weight" not in dict(layer.named_parameters())


def test_full_rank_tucker_represents_any_dense_weight_exactly():
    dense = SpectralConv(2, 3, (3, 2)).double()
    layer = FactorizedSpectralConv(2, 3, (3, 2), factorization="tucker", rank=1.0).double()
    assert layer.ranks == (2, 3, 6, 2)
    with torch.no_grad():  # core = W, factors = identities
        layer.core.copy_(dense.weight)
        for f in layer.factors:
            f.zero_()
            f[..., 0].copy_(torch.eye(f.shape[0], dtype=torch.float64))
    x = torch.randn(2, 2, 8, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), dense(x), rtol=1e-12, atol=1e-14)


def test_rank_fraction_gives_about_that_fraction_of_parameters():
    shape = (16, 16, 16, 8)
    dense = math.prod(shape)
    r = tucker_ranks(shape, 0.1)
    tucker = math.prod(r) + sum(n * k for n, k in zip(shape, r))
    assert 0.05 * dense < tucker <= 0.1 * dense
    assert 0.09 * dense < cp_rank(shape, 0.1) * sum(shape) <= 0.1 * dense
    assert tucker_ranks(shape, 1e-9) == (1, 1, 1, 1) and cp_rank(shape, 1e-9) == 1


@pytest.mark.parametrize("factorization", ["tucker", "cp"])
def test_tfno_spectral_part_is_about_ten_times_smaller(factorization):
    kwargs = dict(in_channels=3, out_channels=1, modes=8, width=16, n_layers=2, projection_channels=16)
    fno, tfno = FNO(**kwargs), TFNO(**kwargs, factorization=factorization, rank=0.1)
    spectral = lambda m: sum(count_parameters(s) for s in m.spectral)
    assert 0.05 < spectral(tfno) / spectral(fno) <= 0.1
    assert count_parameters(fno) - spectral(fno) == count_parameters(tfno) - spectral(tfno)


@pytest.mark.parametrize("modes, n_dim, spatial", [(6, 1, (24,)), ((4, 3), 2, (10, 12)), (2, 3, (6, 5, 7))])
@pytest.mark.parametrize("factorization", ["tucker", "cp"])
def test_tfno_shapes_and_gradients(modes, n_dim, spatial, factorization):
    model = TFNO(3, 2, modes, width=8, n_layers=2, n_dim=n_dim, projection_channels=8, factorization=factorization)
    y = model(torch.randn(2, 3, *spatial))
    assert y.shape == (2, 2, *spatial)
    y.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_tfno_resolution_convergence():
    torch.manual_seed(0)
    model = TFNO(3, 2, 6, width=8, n_layers=2, projection_channels=16, factorization="cp", rank=0.2).double()
    coarse, fine = convergence_gaps(model)
    assert coarse < 1e-6 and fine < 0.5 * coarse  # band-limited path: only GELU harmonics alias


def test_tfno_config_and_errors():
    model = TFNOConfig(modes=4, width=8, n_layers=2, projection_channels=8, factorization="cp", rank=0.2).build(3, 1, 2)
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 1, 9, 9)
    with pytest.raises(ValueError, match="factorization"):
        FactorizedSpectralConv(2, 2, (3,), factorization="tt")
    with pytest.raises(ValueError, match="rank"):
        FactorizedSpectralConv(2, 2, (3,), rank=0.0)


# ----------------------------------------------------------------------------- U-NO


@pytest.mark.parametrize("n, size", [((16,), (9,)), ((12, 9), (7, 16)), ((6, 5, 8), (9, 4, 5))])
def test_fourier_resample_is_exact_on_band_limited_fields(n, size):
    """A trigonometric polynomial held by both grids is resampled exactly, both ways."""
    g = torch.Generator().manual_seed(1)
    k = [torch.arange(-1, 2) for _ in n]
    coefs = torch.randn(*(3,) * len(n), 2, generator=g, dtype=torch.float64)

    def sample(shape):
        axes = torch.meshgrid(*(torch.arange(m, dtype=torch.float64) / m for m in shape), indexing="ij")
        f = torch.zeros(shape, dtype=torch.float64)
        for idx in torch.cartesian_prod(*[torch.arange(3)] * len(n)).view(-1, len(n)):
            phase = 2 * math.pi * sum(k[j][idx[j]] * axes[j] for j in range(len(n)))
            a, b = coefs[tuple(idx)]
            f += a * torch.cos(phase) + b * torch.sin(phase)
        return f[None, None]

    torch.testing.assert_close(fourier_resample(sample(n), size), sample(size))
    torch.testing.assert_close(fourier_resample(sample(size), n), sample(n))


@pytest.mark.parametrize("modes, n_dim, spatial", [(3, 1, (33,)), ((2, 3), 2, (24, 31)), (2, 3, (17, 16, 19))])
def test_uno_shapes_and_gradients(modes, n_dim, spatial):
    model = UNO(3, 2, modes, width=4, scales=(0.5, 0.25), n_dim=n_dim, projection_channels=8)
    x = torch.randn(2, 3, *spatial, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 2, *spatial)
    y.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_uno_level_choices_config_and_errors():
    model = UNO(3, 1, 3, width=4, scales=(1.0, 0.5), projection_channels=8)
    assert model(torch.randn(1, 3, 14, 15)).shape == (1, 1, 14, 15)
    model = UNOConfig(modes=3, width=4, scales=(0.5,), projection_channels=8).build(3, 1, 2)
    assert model(torch.randn(1, 3, 16, 13)).shape == (1, 1, 16, 13)
    with pytest.raises(ValueError, match="scales"):
        UNO(3, 1, 3, scales=(1.5,))
    with pytest.raises(ValueError, match=r"resolution \(6, 6\) is too small for modes \(4, 4\)"):
        UNO(1, 1, 8, width=2, scales=(0.5,))(torch.zeros(1, 1, 12, 12))


def test_uno_resolution_convergence():
    """The coarse levels truncate the GELU harmonics of the skips at |k| < s_l / 2, so the
    outputs converge as the grid is refined (they are not exactly equal as for FNO)."""
    torch.manual_seed(0)
    model = UNO(3, 2, 8, width=4, scales=(0.5, 0.25), projection_channels=16).double()
    assert [b.spectral.modes for b in model.down] == [(4, 4), (2, 2)]
    coarse, fine = convergence_gaps(model)
    assert fine < 0.5 * coarse and coarse < 1e-2, (coarse, fine)


def test_count_parameters_uno():
    model = UNO(3, 1, (6, 4), width=4, scales=(0.5,), projection_channels=8)  # block modes (3, 2)
    spectral = (4 * 8 + 8 * 4) * (6 * 2 * 2)
    pointwise = (3 * 4 + 4) + (4 * 8 + 8) + (8 * 4 + 4) + (8 * 8 + 8) + (8 * 1 + 1)
    assert count_parameters(model) == spectral + pointwise
