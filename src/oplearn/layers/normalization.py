"""Per-channel normalisation fitted on training data and saved with the model."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class ChannelMoments:
    r"""Per-channel count, mean and sum of squared deviations, accumulated chunk by chunk.

    Each chunk's statistics (in float64) are merged with the running ones by the pairwise
    update of Chan, Golub and LeVeque: for parts :math:`A, B` with counts :math:`n_A, n_B`,
    means :math:`\mu_A, \mu_B` and sums of squared deviations :math:`M_A, M_B`,

    .. math:: \delta = \mu_B - \mu_A,\quad \mu = \mu_A + \delta \frac{n_B}{n},\quad
              M = M_A + M_B + \delta^2 \frac{n_A n_B}{n},\quad n = n_A + n_B,

    so streaming a dataset in chunks gives its mean and (population) standard deviation
    :math:`\sqrt{M / n}` to rounding, without holding it in memory.
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    @torch.no_grad()
    def add(self, x: torch.Tensor) -> ChannelMoments:
        """Merge the values of ``x``: ``(n, channels, *spatial)``."""
        dims = [0, *range(2, x.ndim)]
        x = x.double()
        count = x.numel() // x.shape[1]
        mean = x.mean(dim=dims)
        m2 = (x - mean.reshape(1, -1, *([1] * (x.ndim - 2)))).square().sum(dim=dims)
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, m2
        elif count:
            total = self.count + count
            delta = mean - self.mean
            self.mean = self.mean + delta * (count / total)
            self.m2 = self.m2 + m2 + delta.square() * (self.count * count / total)
            self.count = total
        return self

    @property
    def std(self) -> torch.Tensor:
        return (self.m2 / self.count).sqrt()

    @classmethod
    def of(cls, chunks: Iterable[torch.Tensor]) -> ChannelMoments:
        """The moments of all ``chunks`` together."""
        moments = cls()
        for chunk in chunks:
            moments.add(chunk)
        return moments


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

    def fit(self, x: torch.Tensor) -> ChannelNormalizer:
        """Set the statistics from ``x``: ``(n, channels, *spatial)``."""
        return self.fit_moments(ChannelMoments().add(x))

    @torch.no_grad()
    def fit_moments(self, moments: ChannelMoments) -> ChannelNormalizer:
        """Set the statistics from moments accumulated over a dataset (population std)."""
        self.mean.copy_(moments.mean.to(self.mean.dtype))
        self.std.copy_(moments.std.to(self.std.dtype))
        return self

    def _view(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.reshape(1, -1, *([1] * (ndim - 2)))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._view(self.mean, x.ndim)) / (self._view(self.std, x.ndim) + self.eps)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z * (self._view(self.std, z.ndim) + self.eps) + self._view(self.mean, z.ndim)
