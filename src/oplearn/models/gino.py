"""The geometry-informed neural operator (GINO): GNO to a latent grid, FNO there, GNO back."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from oplearn.grids import Grid
from oplearn.layers.integral import KernelIntegral, mlp
from oplearn.layers.neighbors import radius_neighbors
from oplearn.schema import ModelSpec


class GINO(nn.Module):
    r"""Geometry-informed neural operator.

    .. math::

        v(x) = P([a(x), x]), \qquad
        z(g) = (\mathcal{K}_{in} v)(g) \ \text{at the latent grid nodes } g, \qquad
        z' = \mathrm{FNO}([z, \ell]), \qquad
        u(y) = Q\big([(\mathcal{K}_{out} z')(y), y]\big),

    with kernel integrals (:class:`~oplearn.layers.integral.KernelIntegral`) from the input
    points to a regular latent grid of the box ``domain`` (weighted by the input points'
    ``quadrature`` weights when given) and from the grid to the query points (grid cell
    volumes as quadrature weights), an FNO on the grid, optional latent features :math:`\ell`
    given on the grid (e.g. the signed distance of the geometry), and pointwise maps
    :math:`P` (linear) and :math:`Q` (two-layer MLP). ``mollifier_out`` makes
    :math:`u(y)` smooth in :math:`y` (see :class:`~oplearn.models.mollified_gno.MollifiedGNO`).

    Parameters
    ----------
    in_channels, out_channels : int
    fno : nn.Module
        ``(B, width + latent_channels, *latent_shape) -> (B, width, *latent_shape)``, e.g.
        :class:`oplearn.models.FNO`.
    latent_shape : tuple of int
        Nodes of the latent grid per dimension.
    domain : tuple of (lo, hi)
        The box of the latent grid (bounded node convention, :class:`oplearn.grids.Grid`).
    radius_in, radius_out : float
        Radii of the two integrals (at least the latent grid spacing).
    width : int
        Channels of :math:`v` and :math:`z`.
    latent_channels : int
        Channels of the latent features :math:`\ell`.
    kernel_width : int
        Hidden width of the kernel MLPs.
    mollifier_out : str or None
        Weighting of the output integral (:data:`oplearn.layers.integral.MOLLIFIERS`).
    projection_channels : int
        Hidden channels of :math:`Q`.

    Shapes
    ------
    ``forward(x (N, d), a (N, in_channels), y (Q, d), x_batch (N,), y_batch (Q,), quadrature (N,),
    latent (B, latent_channels, *latent_shape)) -> (Q, out_channels)``, where ``B`` is the
    number of samples of the packed batch (``x_batch`` and ``y_batch`` hold each point's sample,
    ``None`` for one sample).

    References
    ----------
    Li et al., Geometry-Informed Neural Operator for Large-Scale 3D PDEs, NeurIPS 2023.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        fno: nn.Module,
        latent_shape: tuple[int, ...],
        domain: tuple[tuple[float, float], ...],
        radius_in: float,
        radius_out: float,
        width: int = 32,
        latent_channels: int = 0,
        kernel_width: int = 64,
        mollifier_out: str | None = None,
        projection_channels: int = 64,
    ) -> None:
        super().__init__()
        self.grid = Grid(tuple(latent_shape), tuple(domain))
        d = self.grid.ndim
        self.in_channels, self.out_channels, self.width, self.latent_channels = (
            in_channels,
            out_channels,
            width,
            latent_channels,
        )
        self.radius_in, self.radius_out = float(radius_in), float(radius_out)
        self.lifting = nn.Linear(in_channels + d, width)
        self.gno_in = KernelIntegral(width, d, radius_in, kernel_width)
        self.fno = fno
        self.gno_out = KernelIntegral(width, d, radius_out, kernel_width, mollifier=mollifier_out)
        self.projection = mlp([width + d, projection_channels, out_channels])
        self.register_buffer("nodes", self.grid.coordinates(torch.float32).flatten(1).T.contiguous(), persistent=False)

    def forward(
        self,
        x: torch.Tensor,
        a: torch.Tensor,
        y: torch.Tensor,
        x_batch: torch.Tensor | None = None,
        y_batch: torch.Tensor | None = None,
        quadrature: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if a.shape != (len(x), self.in_channels):
            raise ValueError(
                f"GINO expects inputs ({len(x)}, {self.in_channels}) at its {len(x)} points, got {tuple(a.shape)}"
            )
        batches = 1 if x_batch is None else int(x_batch.max()) + 1
        nodes = self.nodes.to(x).repeat(batches, 1)  # (B G, d)
        node_batch = (
            None if x_batch is None else torch.arange(batches, device=x.device).repeat_interleave(len(self.nodes))
        )
        v = self.lifting(torch.cat([a, x], dim=1))
        z = self.gno_in(x, v, nodes, radius_neighbors(x, nodes, self.radius_in, x_batch, node_batch), quadrature)
        z = z.view(batches, -1, self.width).transpose(1, 2).reshape(batches, self.width, *self.grid.shape)
        if self.latent_channels:
            if latent is None or tuple(latent.shape) != (batches, self.latent_channels, *self.grid.shape):
                raise ValueError(
                    f"GINO expects latent features ({batches}, {self.latent_channels}, {', '.join(map(str, self.grid.shape))})"
                )
            z = torch.cat([z, latent.to(z)], dim=1)
        z = self.fno(z).flatten(2).transpose(1, 2).reshape(-1, self.width)  # (B G, width)
        cell = torch.full((len(nodes),), math.prod(self.grid.spacing), dtype=z.dtype, device=z.device)
        out = self.gno_out(nodes, z, y, radius_neighbors(nodes, y, self.radius_out, node_batch, y_batch), cell)
        return self.projection(torch.cat([out, y], dim=1))


class GINOConfig(ModelSpec):
    """GINO on point clouds (:class:`GINO`), for ``train.task=points``: an FNO of ``modes``,
    ``width`` and ``n_layers`` on a ``latent`` x ``latent`` grid of the data's box with the mesh's
    signed distance as a latent channel, kernel integrals of radius ``radius`` latent grid
    spacings in and out."""

    kind: ClassVar[str] = "points"
    name: Literal["gino"] = "gino"
    latent: int = Field(default=32, gt=3)
    modes: int = Field(default=12, gt=0)
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    radius: float = Field(default=1.5, gt=0)
    kernel_width: int = Field(default=64, gt=0)
    projection_channels: int = Field(default=64, gt=0)

    #: The GINO class this config builds (a subclass's config builds the subclass).
    network: ClassVar[type] = GINO
    #: The weighting of the output integral.
    mollifier: ClassVar[str | None] = None

    def build(self, in_channels: int, out_channels: int, box: tuple[tuple[float, float], ...]) -> GINO:
        from oplearn.models.fno import FNO

        shape = (self.latent,) * len(box)
        spacing = max((hi - lo) / (self.latent - 1) for lo, hi in box)
        fno = FNO(self.width + 1, self.width, modes=self.modes, width=self.width, n_layers=self.n_layers)
        return self.network(
            in_channels,
            out_channels,
            fno,
            shape,
            box,
            self.radius * spacing,
            self.radius * spacing,
            width=self.width,
            latent_channels=1,
            kernel_width=self.kernel_width,
            mollifier_out=self.mollifier,
            projection_channels=self.projection_channels,
        )


MODELS = (GINOConfig,)
