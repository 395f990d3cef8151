import itertools
import math

import pytest
import torch

from oplearn.layers.spectral import SpectralConv


def dense_reference(layer: SpectralConv, x: torch.Tensor) -> torch.Tensor:
    """The layer's definition written out: full rfftn, one mode at a time, irfftn."""
    d = len(layer.modes)
    dims = tuple(range(-d, 0))
    u_hat = torch.fft.rfftn(x, dim=dims)
    w = torch.view_as_complex(layer.weight)
    v_hat = torch.zeros(x.shape[0], layer.out_channels, *u_hat.shape[2:], dtype=u_hat.dtype)
    kept = [list(range(m)) + list(range(n - m, n)) for m, n in zip(layer.modes[:-1], x.shape[2:-1])]
    kept.append(list(range(layer.modes[-1])))
    for position in itertools.product(*(range(len(k)) for k in kept)):
        mode = (slice(None), slice(None), *(k[p] for k, p in zip(kept, position)))
        v_hat[mode] = torch.einsum("bi,io->bo", u_hat[mode], w[(slice(None), slice(None), *position)])
    return torch.fft.irfftn(v_hat, s=x.shape[2:], dim=dims)


@pytest.mark.parametrize(
    "modes, spatial",
    [((5,), (20,)), ((5,), (9,)), ((3, 4), (10, 9)), ((3, 4), (6, 6)), ((2, 3, 2), (6, 8, 5)), ((2, 2, 3), (7, 4, 4))],
)
def test_matches_dense_definition_and_shapes(modes, spatial):
    layer = SpectralConv(3, 4, modes).double()
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.randn(2, 3, *spatial, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (2, 4, *spatial)
    torch.testing.assert_close(y, dense_reference(layer, x), rtol=0, atol=1e-12)


def test_weights_are_real_with_trailing_complex_axis_and_scaled():
    layer = SpectralConv(6, 5, (4, 3))
    assert not layer.weight.is_complex()
    assert layer.weight.shape == (6, 5, 8, 3, 2)
    assert 0 <= layer.weight.min() and layer.weight.max() <= 1 / 30


def test_gradients_flow_to_input_and_weight():
    layer = SpectralConv(2, 3, (3, 3))
    x = torch.randn(4, 2, 12, 12, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert layer.weight.grad.abs().sum() > 0


def band_limited(n: int, kmax: int = 10, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Random trigonometric polynomial (|k_j| <= kmax) sampled on the periodic n x n grid."""
    g = torch.Generator().manual_seed(seed)
    x = torch.arange(n, dtype=torch.float64) / n
    X, Y = torch.meshgrid(x, x, indexing="ij")
    f = torch.zeros(2, channels, n, n, dtype=torch.float64)
    for kx, ky in itertools.product(range(-kmax, kmax + 1), range(kmax + 1)):
        amplitude = torch.randn(2, channels, 1, 1, generator=g, dtype=torch.float64) / (1 + kx * kx + ky * ky)
        phase = 2 * math.pi * torch.rand(2, channels, 1, 1, generator=g, dtype=torch.float64)
        f += amplitude * torch.cos(2 * math.pi * (kx * X + ky * Y) + phase)
    return f


def test_resolution_invariance_on_band_limited_field():
    """The same band-limited field at 32^2 and 64^2 gives the same output at shared nodes."""
    layer = SpectralConv(3, 2, (8, 8)).double()
    coarse = layer(band_limited(32))
    fine = layer(band_limited(64))[..., ::2, ::2]
    assert ((coarse - fine).norm() / coarse.norm()).item() < 1e-10


def test_resolution_invariance_in_float32():
    layer = SpectralConv(3, 2, (8, 8))
    coarse = layer(band_limited(32).float())
    fine = layer(band_limited(64).float())[..., ::2, ::2]
    assert ((coarse - fine).norm() / coarse.norm()).item() < 1e-5


@pytest.mark.parametrize(
    "modes, spatial", [((8, 8), (15, 32)), ((8, 8), (16, 13)), ((6,), (9,)), ((4, 4, 4), (8, 8, 5))]
)
def test_too_small_grid_is_a_clear_error(modes, spatial):
    layer = SpectralConv(1, 1, modes)
    with pytest.raises(ValueError) as err:
        layer(torch.zeros(1, 1, *spatial))
    message = str(err.value)
    assert str(tuple(spatial)) in message and str(modes) in message
    assert "finer grid or fewer modes" in message


def test_smallest_grid_for_the_modes_is_accepted():
    layer = SpectralConv(1, 1, (8, 8))
    assert layer(torch.zeros(1, 1, 16, 14)).shape == (1, 1, 16, 14)


def test_invalid_modes():
    with pytest.raises(ValueError, match="modes"):
        SpectralConv(1, 1, (2, 2, 2, 2))
    with pytest.raises(ValueError, match="modes"):
        SpectralConv(1, 1, (0, 3))


def test_reduced_precision_runs_the_ffts_in_float32():
    layer = SpectralConv(3, 2, (4, 4))
    x = torch.randn(2, 3, 16, 16)
    reference = layer(x)
    y = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), reference, rtol=0.05, atol=0.05 * reference.abs().max().item())
    layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(layer(x.to(torch.bfloat16))).all()


def test_wrong_input_shape():
    layer = SpectralConv(3, 2, (4, 4))
    with pytest.raises(ValueError, match=r"expects \(batch, 3, n, n\)"):
        layer(torch.zeros(2, 2, 16, 16))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.zeros(3, 16, 16))


def test_output_size_synthesises_the_same_band_limited_output():
    """Evaluated at another grid (finer or coarser), the output is the same band-limited field,
    scaled by prod(input size) / prod(output size) (irfftn divides by the output's points)."""
    layer = SpectralConv(3, 2, (8, 8)).double()
    coarse, fine = band_limited(32), band_limited(64)
    torch.testing.assert_close(layer(coarse, size=(64, 64)), layer(fine) / 4, rtol=0, atol=1e-10)
    torch.testing.assert_close(layer(fine, size=(32, 16)), 8 * layer(coarse)[..., ::2], rtol=0, atol=1e-10)
    assert layer(coarse, size=[48, 20]).shape == (2, 2, 48, 20)


def test_too_small_output_grid_is_a_clear_error():
    layer = SpectralConv(1, 1, (8, 8))
    with pytest.raises(
        ValueError, match=r"^output resolution \(16, 13\) is too small for modes \(8, 8\).*fewer modes$"
    ):
        layer(torch.zeros(1, 1, 32, 32), size=(16, 13))
    with pytest.raises(ValueError, match="output size must have 2 entries"):
        layer(torch.zeros(1, 1, 32, 32), size=(32,))
