"""An operator on point clouds in physical units: normalisation, network, denormalisation."""

from __future__ import annotations

import torch
from torch import nn

from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelNormalizer


class PointOperator(nn.Module):
    r"""Map physical nodal inputs to physical outputs at query points with a point network ``net``.

    .. math:: \mathcal{G}(a)(y) = D_{out}\big(\mathrm{net}(x, E_{in}(a(x)), y, \dots)\big)

    where :math:`E_{in}` and :math:`D_{out}` are per-channel normalisations fitted on the
    training nodes and ``net`` is a :class:`~oplearn.models.GINO` or
    :class:`~oplearn.models.MollifiedGNO` (latent features: the signed distance of the mesh on
    its latent grid, :attr:`latent_grid`).

    Parameters
    ----------
    net : nn.Module
        ``net(x, a, y, x_batch, y_batch, quadrature, latent) -> (Q, out_channels)``.
    in_channels, out_channels : int
    box : tuple of (lo, hi)
        The box containing the data's domains.

    Shapes
    ------
    ``forward(nodes (P, d), inputs (P, in_channels), queries (Q, d), node_batch (P,), query_batch (Q,),
    weights (P,), latent (B, 1, *latent_grid.shape)) -> (Q, out_channels)``
    """

    def __init__(
        self, net: nn.Module, in_channels: int, out_channels: int, box: tuple[tuple[float, float], ...]
    ) -> None:
        super().__init__()
        self.net, self.in_channels, self.out_channels = net, in_channels, out_channels
        self.box = tuple(tuple(map(float, b)) for b in box)
        self.input_norm = ChannelNormalizer(in_channels)
        self.output_norm = ChannelNormalizer(out_channels)

    @property
    def latent_grid(self) -> Grid:
        """The grid on which the network takes the geometry's signed distance."""
        return self.net.grid

    def forward(
        self,
        nodes: torch.Tensor,
        inputs: torch.Tensor,
        queries: torch.Tensor,
        node_batch: torch.Tensor | None = None,
        query_batch: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
        latent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        a = self.input_norm.encode(inputs.T[None])[0].T
        out = self.net(nodes, a, queries, node_batch, query_batch, weights, latent)
        return self.output_norm.decode(out.T[None])[0].T
