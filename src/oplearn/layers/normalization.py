"""Per-channel normalisation fitted on training data and saved with the model."""

from __future__ import annotations

import torch
from torch import nn


class ChannelNormalizer(nn.Module):
    """Affine map ``z = (x - mean_c) / (std_c + eps)`` with one mean and std per channel.

    The statistics are scalars per channel (pooled over samples and grid points), so the
    map does not depend on the resolution.

    Shapes: ``(batch, channels, *spatial)`` in and out.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "ChannelNormalizer":
        """Set the statistics from ``x``: ``(n, channels, *spatial)``."""
        dims = [0, *range(2, x.ndim)]
        self.mean.copy_(x.double().mean(dim=dims).to(self.mean.dtype))
        self.std.copy_(x.double().std(dim=dims, unbiased=False).to(self.std.dtype))
        return self

    def _view(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (ndim - 2)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._view(self.mean, x.ndim)) / (self._view(self.std, x.ndim) + self.eps)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z * (self._view(self.std, z.ndim) + self.eps) + self._view(self.mean, z.ndim)
