"""The graph neural operator (GNO) on point clouds."""

from __future__ import annotations

import torch
from torch import nn

from oplearn.layers.integral import KernelIntegral, mlp
from oplearn.layers.neighbors import radius_neighbors


class GNO(nn.Module):
    r"""Graph neural operator: kernel integrals over radius neighbourhoods of the input points.

    .. math::

        v_0(x) = P([a(x), x]), \qquad
        v_{l+1}(x) = \sigma\big((\mathcal{K}_l v_l)(x) + W_l v_l(x)\big) \ (l < L - 1), \qquad
        u(y) = Q\big([(\mathcal{K}_{L-1} v_{L-1})(y), y]\big),

    on the input points :math:`x` except the last integral, which is evaluated at the query
    points :math:`y` (any number, anywhere). :math:`\mathcal{K}_l` are
    :class:`~oplearn.layers.integral.KernelIntegral` s (radius ``radius``, optional mollifier),
    :math:`P`, :math:`W_l` pointwise linear maps, :math:`Q` a pointwise two-layer MLP. The
    output at :math:`y` depends on the inputs only through sums over neighbourhoods, so it
    does not depend on the order of the points, and with ``quadrature`` weights it
    converges as the point cloud is refined.

    Parameters
    ----------
    in_channels, out_channels : int
    coord_dim : int
        Dimension of the points.
    width : int
        Channels of :math:`v_l`.
    n_layers : int
        Number of kernel integrals :math:`L`.
    radius : float
    kernel_width : int
        Hidden width of each kernel MLP.
    mollifier : str or None
        Weighting of every integral (:data:`oplearn.layers.integral.MOLLIFIERS`).
    projection_channels : int
        Hidden channels of :math:`Q`.

    Shapes
    ------
    ``forward(x (N, d), a (N, in_channels), y (Q, d) = x, x_batch (N,), y_batch (Q,), quadrature (N,))
    -> (Q, out_channels)``; ``x_batch``/``y_batch`` give the sample of each point of a packed
    batch (points of different samples never interact).

    References
    ----------
    Li et al., Neural Operator: Graph Kernel Network for Partial Differential Equations, 2020.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        coord_dim: int = 2,
        width: int = 32,
        n_layers: int = 3,
        radius: float = 0.1,
        kernel_width: int = 64,
        mollifier: str | None = None,
        projection_channels: int = 64,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels, self.out_channels, self.radius = in_channels, out_channels, float(radius)
        self.lifting = nn.Linear(in_channels + coord_dim, width)
        self.integrals = nn.ModuleList(
            KernelIntegral(width, coord_dim, radius, kernel_width, mollifier=mollifier) for _ in range(n_layers)
        )
        self.skip = nn.ModuleList(nn.Linear(width, width) for _ in range(n_layers - 1))
        self.activation = nn.GELU()
        self.projection = mlp([width + coord_dim, projection_channels, out_channels])

    def forward(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        y: torch.Tensor | None = None,
        x_batch: torch.Tensor | None = None,
        y_batch: torch.Tensor | None = None,
        quadrature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if y is None:
            y, y_batch = x, x_batch
        if a.shape != (len(x), self.in_channels):
            raise ValueError(
                f"GNO expects inputs ({len(x)}, {self.in_channels}) at its {len(x)} points, got {tuple(a.shape)}"
            )
        v = self.lifting(torch.cat([a, x], dim=1))
        if len(self.skip):
            own = radius_neighbors(x, x, self.radius, x_batch, x_batch)
            for integral, skip in zip(self.integrals[:-1], self.skip):
                v = self.activation(integral(x, v, x, own, quadrature) + skip(v))
        to_queries = radius_neighbors(x, y, self.radius, x_batch, y_batch)
        return self.projection(torch.cat([self.integrals[-1](x, v, y, to_queries, quadrature), y], dim=1))
