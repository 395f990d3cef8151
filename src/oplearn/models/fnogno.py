"""FNOGNO: an FNO on a regular grid, read out at arbitrary points by a GNO."""

from __future__ import annotations

import math

import torch
from torch import nn

from oplearn.grids import Grid
from oplearn.layers.integral import KernelIntegral, mlp
from oplearn.layers.neighbors import radius_neighbors


class FNOGNO(nn.Module):
    r"""FNO on the input grid, GNO from the grid nodes to the query points.

    .. math:: z = \mathrm{FNO}([a, g]), \qquad u(y) = Q\big([(\mathcal{K} z)(y), y]\big),

    for inputs :math:`a` on a regular grid of the box ``domain`` (any resolution), node
    coordinates :math:`g` appended as channels, a kernel integral
    (:class:`~oplearn.layers.integral.KernelIntegral`, grid cell volumes as quadrature
    weights) and a pointwise two-layer MLP :math:`Q`.

    Parameters
    ----------
    in_channels, out_channels : int
    fno : nn.Module
        ``(B, in_channels + d, *shape) -> (B, width, *shape)``, e.g. :class:`oplearn.models.FNO`.
    domain : tuple of (lo, hi)
        The box of the input grid (bounded node convention).
    radius : float
        Radius of the integral (at least the grid spacing).
    width, kernel_width, projection_channels : int
    mollifier : str or None
        Weighting of the integral (:data:`oplearn.layers.integral.MOLLIFIERS`).

    Shapes
    ------
    ``forward(a (B, in_channels, *shape), y (Q, d), y_batch (Q,)) -> (Q, out_channels)``;
    ``y_batch`` holds the sample of each query point (``None``: all of sample 0, ``B = 1``).

    References
    ----------
    Li et al., Geometry-Informed Neural Operator for Large-Scale 3D PDEs, NeurIPS 2023 (FNOGNO
    as in the NeuralOperator library).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        fno: nn.Module,
        domain: tuple[tuple[float, float], ...],
        radius: float,
        width: int = 32,
        kernel_width: int = 64,
        mollifier: str | None = None,
        projection_channels: int = 64,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.width, self.radius = in_channels, out_channels, width, float(radius)
        self.domain = tuple(tuple(map(float, d)) for d in domain)
        self.fno = fno
        self.gno = KernelIntegral(width, len(self.domain), radius, kernel_width, mollifier=mollifier)
        self.projection = mlp([width + len(self.domain), projection_channels, out_channels])

    def forward(self, a: torch.Tensor, y: torch.Tensor, y_batch: torch.Tensor | None = None) -> torch.Tensor:
        d = len(self.domain)
        if a.ndim != d + 2 or a.shape[1] != self.in_channels:
            raise ValueError(
                f"FNOGNO expects inputs (batch, {self.in_channels}, {', '.join(['n'] * d)}), got {tuple(a.shape)}"
            )
        if y_batch is None and len(a) > 1:
            raise ValueError(f"FNOGNO got {len(a)} input grids: give y_batch, the sample of each query point")
        grid = Grid(tuple(a.shape[2:]), self.domain)
        coords = grid.coordinates(a.dtype, a.device)
        z = self.fno(torch.cat([a, coords.expand(len(a), *coords.shape)], dim=1))
        z = z.flatten(2).transpose(1, 2).reshape(-1, self.width)  # (B G, width)
        nodes = coords.flatten(1).T.repeat(len(a), 1)
        node_batch = (
            None
            if y_batch is None
            else torch.arange(len(a), device=a.device).repeat_interleave(grid.shape[0] * math.prod(grid.shape[1:]))
        )
        cell = torch.full((len(nodes),), math.prod(grid.spacing), dtype=z.dtype, device=z.device)
        out = self.gno(nodes, z, y, radius_neighbors(nodes, y, self.radius, node_batch, y_batch), cell)
        return self.projection(torch.cat([out, y], dim=1))
