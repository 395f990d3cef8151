import pytest
import torch

from oplearn.grids import Grid
from oplearn.models import count_parameters
from oplearn.models.deeponet import DeepONet, DeepONetConfig
from oplearn.models.resnet import DilResNet, ResNetConfig
from oplearn.models.unet import UNet, UNetConfig


def assert_all_gradients(model: torch.nn.Module, x: torch.Tensor) -> None:
    model(x).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def with_coordinates(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Append node coordinates as OperatorModel does."""
    coords = grid.coordinates(dtype=x.dtype)
    return torch.cat([x, coords.expand(x.shape[0], *coords.shape)], dim=1)


# --- U-Net -------------------------------------------------------------------------------


@pytest.mark.parametrize("spatial, levels", [((32,), 3), ((16, 16), 2), ((10, 13), 2), ((8, 8, 6), 1), ((9,), 3)])
def test_unet_shapes_including_sizes_not_divisible_by_two_to_the_levels(spatial, levels):
    model = UNet(3, 2, grid_size=spatial, width=4, levels=levels)
    assert model(torch.randn(2, 3, *spatial)).shape == (2, 2, *spatial)


def test_unet_gradients_reach_every_parameter():
    assert_all_gradients(UNet(3, 1, grid_size=(12, 12), width=4, levels=2), torch.randn(2, 3, 12, 12))


def test_unet_refuses_another_grid():
    model = UNet(1, 1, grid_size=(32, 32), width=4, levels=2)
    with pytest.raises(ValueError, match=r"^this U-Net is tied to the 32x32 grid it was built for, got 64x64; [^\n]*$"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="expects input"):
        model(torch.zeros(1, 2, 32, 32))
    unchecked = UNet(1, 1, grid_size=None, width=4, levels=2, n_dim=2)
    assert unchecked(torch.zeros(1, 1, 20, 24)).shape == (1, 1, 20, 24)


def test_unet_built_from_config():
    model = UNetConfig(width=4, levels=2).build(3, 1, 2, grid_shape=(16, 16))
    assert model.grid_size == (16, 16)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 1, 16, 16)


# --- DeepONet ----------------------------------------------------------------------------


@pytest.mark.parametrize("grid_shape", [(20,), (8, 6), (4, 5, 3)])
@pytest.mark.parametrize("coordinate_channels", [True, False])
def test_deeponet_shapes(grid_shape, coordinate_channels):
    n_dim = len(grid_shape)
    in_channels = 2 + n_dim * coordinate_channels
    model = DeepONet(
        in_channels,
        3,
        grid_shape,
        branch_width=16,
        trunk_width=16,
        depth=2,
        basis=5,
        coordinate_channels=coordinate_channels,
    )
    x = torch.randn(4, in_channels, *grid_shape)
    assert model(x).shape == (4, 3, *grid_shape)
    assert model.evaluate_at(x, torch.rand(7, n_dim)).shape == (4, 3, 7)
    assert model.evaluate_at(x, torch.rand(4, 7, n_dim)).shape == (4, 3, 7)


def test_deeponet_gradients_reach_every_parameter():
    grid = Grid((8, 8), ((0.0, 2.0), (0.0, 1.0)))
    model = DeepONet(3, 1, grid.shape, branch_width=16, trunk_width=16, depth=2, basis=4)
    assert_all_gradients(model, with_coordinates(torch.randn(2, 1, 8, 8), grid))


def test_deeponet_evaluate_at_agrees_with_forward_at_the_nodes():
    torch.manual_seed(1)
    grid = Grid((8, 6), ((-1.0, 1.0), (0.0, 3.0)), periodic=True)
    model = DeepONet(4, 2, grid.shape, branch_width=16, trunk_width=16, depth=2, basis=5).double()
    x = with_coordinates(torch.randn(3, 2, *grid.shape, dtype=torch.float64), grid)
    nodes = grid.coordinates(dtype=torch.float64).flatten(1).T  # physical units, as in the channels
    expected = model(x).flatten(2)
    torch.testing.assert_close(model.evaluate_at(x, nodes), expected, rtol=1e-12, atol=1e-12)
    # without coordinate channels the trunk's nodes are those of the unit box
    plain = DeepONet(
        2, 2, grid.shape, branch_width=16, trunk_width=16, depth=2, basis=5, coordinate_channels=False
    ).double()
    unit = Grid(grid.shape, ((0.0, 1.0), (0.0, 1.0))).coordinates(dtype=torch.float64).flatten(1).T
    torch.testing.assert_close(plain.evaluate_at(x[:, :2], unit), plain(x[:, :2]).flatten(2), rtol=1e-12, atol=1e-12)


def test_deeponet_branch_ignores_coordinate_channels():
    grid = Grid((6, 6), ((0.0, 1.0), (0.0, 1.0)))
    model = DeepONet(3, 1, grid.shape, branch_width=8, trunk_width=8, depth=1, basis=3)
    x = with_coordinates(torch.randn(2, 1, 6, 6), grid)
    query = torch.rand(5, 2)
    shifted = x.clone()
    shifted[:, 1:] += 10.0  # other coordinate values change only forward's query points
    torch.testing.assert_close(model.evaluate_at(x, query), model.evaluate_at(shifted, query))


def test_deeponet_refuses_another_sensor_grid():
    model = DeepONet(3, 1, (32, 32), branch_width=8, trunk_width=8, depth=1, basis=3)
    with pytest.raises(
        ValueError, match=r"^this DeepONet's branch reads the 32x32 sensor grid it was built for, got 64x64; [^\n]*$"
    ):
        model(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="coords must be"):
        model.evaluate_at(torch.zeros(1, 3, 32, 32), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="no field channels"):
        DeepONet(2, 1, (8, 8))


def test_deeponet_built_from_config():
    config = DeepONetConfig(branch_width=8, trunk_width=8, depth=1, basis=3)
    model = config.build(3, 1, 2, grid_shape=(10, 10))
    assert model(torch.randn(2, 3, 10, 10)).shape == (2, 1, 10, 10)
    assert config.build(1, 1, 1, grid_shape=(10,), coordinate_channels=False).n_fields == 1
    with pytest.raises(ValueError, match="training grid shape"):
        config.build(3, 1, 2)


# --- dilated ResNet ----------------------------------------------------------------------


@pytest.mark.parametrize("spatial", [(24,), (12, 10), (6, 5, 4)])
def test_dil_resnet_shapes(spatial):
    model = DilResNet(3, 2, width=4, n_blocks=2, n_dim=len(spatial))
    assert model(torch.randn(2, 3, *spatial)).shape == (2, 2, *spatial)


def test_dil_resnet_runs_at_two_resolutions():
    model = DilResNet(3, 1, width=8, n_blocks=2)
    for n in (32, 64):
        y = model(torch.randn(2, 3, n, n))
        assert y.shape == (2, 1, n, n) and torch.isfinite(y).all()


def test_dil_resnet_gradients_reach_every_parameter():
    assert_all_gradients(DilResNet(3, 1, width=4, n_blocks=2), torch.randn(2, 3, 20, 20))


def test_periodic_dil_resnet_commutes_with_shifts():
    model = DilResNet(1, 1, width=4, n_blocks=1, periodic=True).double()
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    shift = lambda v: torch.roll(v, shifts=(5, -3), dims=(2, 3))
    torch.testing.assert_close(model(shift(x)), shift(model(x)))


def test_dil_resnet_built_from_config_and_counted():
    model = ResNetConfig(width=4, n_blocks=2, periodic=True).build(3, 1, 2, grid_shape=(8, 8))
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 1, 8, 8)
    convs = 2 * 7 * (4 * 4 * 9 + 4)
    assert count_parameters(model) == (3 * 4 + 4) + convs + (4 * 1 + 1)
