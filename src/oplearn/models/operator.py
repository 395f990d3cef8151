"""A neural operator in physical units: normalisation, coordinates, network, denormalisation."""

from __future__ import annotations

import torch
from torch import nn

from oplearn.errors import DataError
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelNormalizer


class OperatorModel(nn.Module):
    """Map physical input fields to physical output fields with any network ``net``.

    .. math:: \\mathcal{G}(a) = D_{out}\\big(\\mathrm{net}([E_{in}(a), x])\\big)

    where :math:`E_{in}` and :math:`D_{out}` are per-channel normalisations fitted on the
    training set and :math:`x` are the grid's node coordinates (appended as channels when
    ``positional_features`` is true). The coordinates follow the grid convention of the
    training data (``domain`` and ``periodic``), so every resolution sees the same
    physical positions.

    Parameters
    ----------
    net : nn.Module
        ``(batch, in_channels + ndim * positional_features, *spatial) -> (batch, out_channels, *spatial)``.
    in_channels, out_channels : int
        Physical channel counts.
    domain : tuple of (lo, hi)
        The box the data lives on; its length is the number of spatial dimensions.
    periodic : bool
        Grid convention of the data (see :mod:`oplearn.grids`).
    positional_features : bool
        Append node coordinates to the input channels.
    train_shape : tuple of int
        The grid shape of the training data (recorded for reports; any shape is accepted).

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``; a conditioned
    ``net`` (:mod:`oplearn.layers.conditioning`) also takes ``condition: (batch, c)``, passed on.

    Attributes
    ----------
    increment : bool
        Predict an increment of the input's last ``out_channels`` channels (a time step's
        :math:`u(t + \\Delta t) - u(t)`): :math:`\\mathcal{G}(a) = a_{-C:} + D_{out}(\\dots)`, the
        output normaliser then fitted on the increments; ``False`` by default.
    projection : nn.Module or None
        Applied to the physical output when set (e.g. a
        :class:`~oplearn.layers.projection.ModeProjection`); ``None`` by default.
    """

    def __init__(
        self,
        net: nn.Module,
        in_channels: int,
        out_channels: int,
        domain: tuple[tuple[float, float], ...],
        periodic: bool,
        positional_features: bool = True,
        train_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.net = net
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.domain = tuple(tuple(d) for d in domain)
        self.periodic = periodic
        self.positional_features = positional_features
        self.train_shape = tuple(train_shape)
        self.input_norm = ChannelNormalizer(in_channels)
        self.output_norm = ChannelNormalizer(out_channels)
        self.increment = False
        self.projection: nn.Module | None = None

    @property
    def ndim(self) -> int:
        return len(self.domain)

    def grid_for(self, x: torch.Tensor) -> Grid:
        """The grid of an input batch ``(batch, channels, *spatial)``."""
        return Grid(tuple(x.shape[2:]), self.domain, self.periodic)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != self.ndim + 2:
            raise DataError(
                f"input of shape {tuple(x.shape)} has {x.ndim - 2} spatial dimensions; this model expects "
                f"{self.ndim}: (batch, {self.in_channels}, {', '.join(['n'] * self.ndim)})"
            )
        if x.shape[1] != self.in_channels:
            raise DataError(f"input has {x.shape[1]} channels; this model was trained on {self.in_channels}")
        z = self.input_norm.encode(x)
        if self.positional_features:
            coords = self.grid_for(x).coordinates(dtype=z.dtype, device=z.device)
            z = torch.cat([z, coords.expand(x.shape[0], *coords.shape)], dim=1)
        out = self.output_norm.decode(self.net(z) if condition is None else self.net(z, condition))
        if self.increment:
            out = x[:, -self.out_channels :] + out
        return out if self.projection is None else self.projection(out)
