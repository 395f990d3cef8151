import pytest
import torch
from test_spectral_conv import band_limited

from oplearn.models import FNO, count_parameters
from oplearn.models.fno import Pointwise


@pytest.mark.parametrize(
    "modes, n_dim, spatial",
    [(6, 1, (24,)), ((4, 3), 2, (10, 12)), (3, 3, (8, 6, 7)), ((5,), 1, (11,))],
)
def test_shapes_in_1d_2d_3d(modes, n_dim, spatial):
    model = FNO(in_channels=3, out_channels=2, modes=modes, width=8, n_layers=2, n_dim=n_dim, projection_channels=16)
    assert model(torch.randn(4, 3, *spatial)).shape == (4, 2, *spatial)


def test_padding_and_lifting_mlp_keep_shapes():
    model = FNO(2, 1, 4, width=8, n_layers=2, lifting_channels=16, projection_channels=8, padding=0.25)
    assert isinstance(model.lifting, torch.nn.Sequential)
    for n in (12, 21):  # padded to 15 and 26 points: the grid grows with the resolution
        assert model(torch.randn(3, 2, n, n)).shape == (3, 1, n, n)


def test_gradients_reach_every_parameter():
    model = FNO(3, 1, (4, 4), width=8, n_layers=3, lifting_channels=12, projection_channels=8, padding=0.1)
    model(torch.randn(2, 3, 12, 12)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def relative_gap(activation: str) -> float:
    """FNO on one band-limited field at 32^2 and at 64^2 (compared at the shared nodes)."""
    torch.manual_seed(0)
    model = FNO(3, 2, 8, width=16, activation=activation).double()
    coarse = model(band_limited(32, kmax=6))
    fine = model(band_limited(64, kmax=6))[..., ::2, ::2]
    return ((coarse - fine).norm() / coarse.norm()).item()


def test_resolution_invariance_linear_fno_is_exact():
    """Without a nonlinearity every block maps band-limited fields to band-limited fields."""
    assert relative_gap("identity") < 1e-12


def test_resolution_invariance_gelu_fno():
    """GELU is analytic, so the harmonics it creates from a smooth field decay exponentially
    and their aliasing at 32^2 is tiny (about 3e-10 here in float64). The tolerance 1e-6
    still fails for a kinked activation (ReLU gives about 1e-5) or any mis-scaled transform."""
    assert relative_gap("gelu") < 1e-6


def test_too_small_grid_for_modes():
    model = FNO(1, 1, 8, width=4, n_layers=1)
    with pytest.raises(ValueError, match=r"resolution \(12, 12\) is too small for modes \(8, 8\)"):
        model(torch.zeros(1, 1, 12, 12))


def test_input_shape_and_argument_errors():
    model = FNO(3, 1, 4, width=4, n_layers=1)
    with pytest.raises(ValueError, match="expects input"):
        model(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="activation"):
        FNO(1, 1, 4, activation="softsign")
    with pytest.raises(ValueError, match="padding"):
        FNO(1, 1, 4, padding=1.5)


def test_pointwise_is_a_1x1_convolution():
    layer = Pointwise(3, 5)
    x = torch.randn(2, 3, 4, 6)
    conv = torch.nn.functional.conv2d(x, layer.weight[:, :, None, None], layer.bias)
    torch.testing.assert_close(layer(x), conv)
    extra = torch.randn(2, 5, 4, 6)
    torch.testing.assert_close(layer(x, add=extra), conv + extra)


def test_count_parameters():
    model = FNO(3, 1, (4, 3), width=8, n_layers=2, projection_channels=16)
    spectral = 2 * (8 * 8 * 8 * 3 * 2)
    pointwise = (3 * 8 + 8) + 2 * (8 * 8 + 8) + (8 * 16 + 16) + (16 * 1 + 1)
    assert count_parameters(model) == spectral + pointwise
    complex_linear = torch.nn.Linear(2, 3, dtype=torch.complex64)
    assert count_parameters(complex_linear) == 2 * (2 * 3 + 3)


def test_built_from_config():
    from oplearn.models.fno import FNOConfig

    model = FNOConfig(modes=4, width=8, n_layers=2, projection_channels=8, padding=0.1).build(3, 1, 2)
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 1, 9, 9)


def test_activation_checkpointing_recomputes_blocks_and_keeps_gradients():
    from oplearn.layers.spectral import SpectralConv

    torch.manual_seed(0)
    model = FNO(3, 1, modes=4, width=8, n_layers=3, padding=0.1)
    x = torch.randn(2, 3, 16, 16)
    calls = []
    hooks = [
        m.register_forward_hook(lambda *_: calls.append(1)) for m in model.modules() if isinstance(m, SpectralConv)
    ]
    grads = {}
    for flag in (False, True):
        model.activation_checkpointing = flag
        model.zero_grad()
        calls.clear()
        model(x).square().mean().backward()
        grads[flag] = [p.grad.clone() for p in model.parameters()]
        assert len(calls) == (6 if flag else 3), "checkpointed blocks run again in the backward pass"
    for plain, recomputed in zip(grads[False], grads[True]):
        torch.testing.assert_close(recomputed, plain)
    for h in hooks:
        h.remove()
