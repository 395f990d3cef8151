"""The deep operator network (DeepONet): branch net on sensor values, trunk net on coordinates."""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from oplearn.grids import Grid
from oplearn.layers.activations import activation_class
from oplearn.models.unet import grid_text
from oplearn.schema import ModelSpec


def mlp(
    in_features: int, width: int, depth: int, out_features: int, activation: str, final_activation: bool
) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units with the activation between them."""
    act = activation_class(activation)
    sizes = [in_features, *([width] * depth), out_features]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(act())
    return nn.Sequential(*layers)


class DeepONet(nn.Module):
    r"""Deep operator network (unstacked, one set of ``basis`` functions per output channel).

    .. math:: u_c(y) = \sum_{k=1}^{p} \beta_{ck}\big(a(s_1), \dots, a(s_m)\big) \, \tau_{ck}(y) + b_c

    where the branch net :math:`\beta` (an MLP) reads the input fields at the ``m`` fixed
    sensors :math:`s_j` (the nodes of ``grid_shape``, flattened), the trunk net :math:`\tau`
    (an MLP with the activation on its output too) reads an output coordinate :math:`y`,
    :math:`p` is ``basis`` and :math:`b_c` a learned bias.

    **Fixed grid in the branch, any points in the trunk.** The branch's first layer has one
    weight per sensor, so the input must be sampled at exactly ``grid_shape``; another shape
    is refused with a ValueError. The output can be evaluated anywhere: :meth:`forward`
    returns it at the input's own nodes, :meth:`evaluate_at` at arbitrary points.

    **Coordinates.** With ``coordinate_channels=True`` the last ``n_dim`` input channels
    are node coordinates (as appended by :class:`~oplearn.models.operator.OperatorModel`):
    the branch ignores them (they are the same for every sample, so they would only add
    a constant to the branch's first layer), and :meth:`forward` feeds them to the trunk, so
    its query points are in the data's physical units. :meth:`evaluate_at` takes points in
    the same units. With ``coordinate_channels=False`` the trunk uses the nodes of the unit
    box, :math:`y_j = j / (n - 1)` on every axis (both ends included), and
    :meth:`evaluate_at` takes points of :math:`[0, 1]^d`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input (coordinate channels included) and output fields.
    grid_shape : tuple of int
        The sensor grid: the spatial shape of every input. Its length is ``n_dim``.
    branch_width, trunk_width : int
        Hidden units of the branch and trunk MLPs.
    depth : int
        Hidden layers of each MLP.
    basis : int
        Basis functions :math:`p` per output channel.
    coordinate_channels : bool
        Whether the last ``n_dim`` input channels are node coordinates (see above).
    activation : str
        One of ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``, ``"identity"``.

    Shapes
    ------
    ``x: (batch, in_channels, *grid_shape) -> (batch, out_channels, *grid_shape)``;
    :meth:`evaluate_at` gives ``(batch, out_channels, n_points)``.

    References
    ----------
    Lu, Jin, Pang, Zhang and Karniadakis, Learning nonlinear operators via DeepONet based on
    the universal approximation theorem of operators, Nature Machine Intelligence 3, 2021.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        grid_shape: tuple[int, ...],
        branch_width: int = 128,
        trunk_width: int = 128,
        depth: int = 3,
        basis: int = 64,
        coordinate_channels: bool = True,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        grid_shape = tuple(int(n) for n in grid_shape)
        n_dim = len(grid_shape)
        if not 1 <= n_dim <= 3 or any(n < 2 for n in grid_shape):
            raise ValueError(f"grid_shape must hold 1 to 3 sizes >= 2, got {grid_shape}")
        n_fields = in_channels - n_dim if coordinate_channels else in_channels
        if n_fields < 1:
            raise ValueError(f"in_channels={in_channels} leaves no field channels besides {n_dim} coordinate channels")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.grid_shape = grid_shape
        self.n_dim = n_dim
        self.n_fields = n_fields
        self.basis = basis
        self.coordinate_channels = coordinate_channels
        n_sensors = math.prod(grid_shape)
        self.branch = mlp(n_fields * n_sensors, branch_width, depth, out_channels * basis, activation, False)
        self.trunk = mlp(n_dim, trunk_width, depth, out_channels * basis, activation, True)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.unit_grid = Grid(grid_shape, ((0.0, 1.0),) * n_dim, periodic=False)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != self.n_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DeepONet expects input (batch, {self.in_channels}, {', '.join(map(str, self.grid_shape))}), "
                f"got {tuple(x.shape)}"
            )
        if tuple(x.shape[2:]) != self.grid_shape:
            raise ValueError(
                f"this DeepONet's branch reads the {grid_text(self.grid_shape)} sensor grid it was built for, got "
                f"{grid_text(tuple(x.shape[2:]))}; resample the input to {grid_text(self.grid_shape)} "
                f"(evaluate_at gives the output at any points)"
            )

    def evaluate_at(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """The output at arbitrary points.

        ``x: (batch, in_channels, *grid_shape)``, ``coords: (n_points, n_dim)`` shared by
        the batch or ``(batch, n_points, n_dim)`` -> ``(batch, out_channels, n_points)``.
        """
        self._check(x)
        if coords.shape[-1] != self.n_dim or coords.ndim not in (2, 3):
            raise ValueError(
                f"coords must be (n_points, {self.n_dim}) or (batch, n_points, {self.n_dim}), got {tuple(coords.shape)}"
            )
        batch, c, p = x.shape[0], self.out_channels, self.basis
        beta = self.branch(x[:, : self.n_fields].flatten(1)).view(batch, c, p)
        tau = self.trunk(coords.to(x.dtype))
        tau = tau.view(*tau.shape[:-1], c, p)  # (n_points, c, p) or (batch, n_points, c, p)
        if coords.ndim == 2:
            u = torch.einsum("bck,nck->bcn", beta, tau)
        else:
            u = torch.einsum("bck,bnck->bcn", beta, tau)
        return u + self.bias[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, in_channels, *grid_shape) -> (batch, out_channels, *grid_shape)``."""
        self._check(x)
        if self.coordinate_channels:
            coords = x[:, self.n_fields :].flatten(2).transpose(1, 2)  # (batch, n_points, n_dim)
        else:
            coords = self.unit_grid.coordinates(dtype=x.dtype, device=x.device).flatten(1).T  # (n_points, n_dim)
        return self.evaluate_at(x, coords).view(x.shape[0], self.out_channels, *self.grid_shape)


class DeepONetConfig(ModelSpec):
    """Deep operator network (:class:`oplearn.models.deeponet.DeepONet`)."""

    name: Literal["deeponet"] = "deeponet"
    branch_width: int = Field(default=128, gt=0)
    trunk_width: int = Field(default=128, gt=0)
    depth: int = Field(default=3, gt=0)
    basis: int = Field(default=64, gt=0)

    def build(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int,
        grid_shape: tuple[int, ...] | None = None,
        coordinate_channels: bool = True,
    ) -> DeepONet:
        """``grid_shape`` (the training grid, required) fixes the sensors; ``coordinate_channels``
        says whether ``in_channels`` counts appended coordinates (``train.positional_features``)."""
        if grid_shape is None:
            raise ValueError("DeepONet needs the training grid shape: build(..., grid_shape=(n1, n2, ...))")
        if len(grid_shape) != n_dim:
            raise ValueError(f"grid_shape {tuple(grid_shape)} does not have n_dim={n_dim} sizes")
        return DeepONet(
            in_channels=in_channels,
            out_channels=out_channels,
            grid_shape=tuple(grid_shape),
            branch_width=self.branch_width,
            trunk_width=self.trunk_width,
            depth=self.depth,
            basis=self.basis,
            coordinate_channels=coordinate_channels,
        )


MODELS = (DeepONetConfig,)
