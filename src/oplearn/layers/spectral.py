"""Spectral convolution: a learned multiplier on the lowest Fourier modes of a field."""

from __future__ import annotations

import math

import torch
from torch import nn


class SpectralConv(nn.Module):
    r"""Convolution with a learned kernel that is band-limited to the lowest Fourier modes.

    .. math::

        \hat v_o(k) = \sum_i \hat u_i(k) \, W_{i o}(k) \quad \text{for kept } k, \qquad
        \hat v_o(k) = 0 \quad \text{otherwise},

    with :math:`\hat u = \mathrm{rfftn}(u)` over the last ``d = len(modes)`` axes and
    :math:`v = \mathrm{irfftn}(\hat v)` at the input's own size. The kept modes are the
    integer frequencies :math:`-m_j \le k_j < m_j` on every axis but the last and
    :math:`0 \le k_d < m_d` on the last one (the half spectrum of a real field). Since
    ``rfftn`` is unnormalised and ``irfftn`` divides by the number of points, the layer acts
    on the continuous field: a band-limited input sampled on any grid fine enough for the
    modes gives samples of the same output.

    The complex weights :math:`W` are stored as a real parameter ``weight`` of shape
    ``(in_channels, out_channels, 2 m_1, ..., 2 m_{d-1}, m_d, 2)`` (real and imaginary part
    on the trailing axis; frequency axes ordered ``0, 1, ..., m-1, -m, ..., -1``), so
    optimisers, DDP and mixed precision never see a complex parameter. They are drawn
    uniformly from ``[0, 1 / (in_channels * out_channels))``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    modes : tuple of int
        ``m_j`` per spatial dimension (1 to 3 dimensions).

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``, where each
    spatial size ``n_j`` satisfies ``n_j >= 2 m_j`` (``j < d``) and ``n_d // 2 + 1 >= m_d``.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: tuple[int, ...]) -> None:
        super().__init__()
        modes = tuple(int(m) for m in modes)
        if not 1 <= len(modes) <= 3 or any(m < 1 for m in modes):
            raise ValueError(f"modes must be 1 to 3 positive integers, got {modes}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        kept = tuple(2 * m for m in modes[:-1]) + (modes[-1],)
        scale = 1.0 / (in_channels * out_channels)
        self.weight = nn.Parameter(scale * torch.rand(in_channels, out_channels, *kept, 2))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"

    def check_size(self, spatial: tuple[int, ...]) -> None:
        """Raise a ValueError if a grid of size ``spatial`` cannot hold the kept modes."""
        *lead, last = self.modes
        too_small = any(2 * m > n for m, n in zip(lead, spatial[:-1])) or last > spatial[-1] // 2 + 1
        if len(spatial) != len(self.modes) or too_small:
            need = tuple(2 * m for m in lead) + (max(2 * last - 2, 1),)
            raise ValueError(
                f"input resolution {tuple(spatial)} is too small for modes {self.modes}: a spectral "
                f"convolution keeping frequencies -m..m-1 (and 0..m-1 on the last axis) needs at least "
                f"{need} grid points; use a finer grid or fewer modes"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``."""
        d = len(self.modes)
        spatial = tuple(x.shape[-d:])
        self.check_size(spatial)
        u_hat = self._truncated_rfftn(x)  # (batch, in, 2 m_1, ..., m_d)
        v_hat = self._mix(u_hat)  # (batch, out, 2 m_1, ..., m_d)
        return self._padded_irfftn(v_hat, spatial)

    def _truncated_rfftn(self, x: torch.Tensor) -> torch.Tensor:
        """The kept modes of ``rfftn(x)``, transforming the last axis first so that the
        other axes are only transformed on the ``m_d`` kept columns."""
        d = len(self.modes)
        u_hat = torch.fft.rfft(x, dim=-1)[..., : self.modes[-1]]
        if d == 1:
            return u_hat
        u_hat = torch.fft.fftn(u_hat, dim=tuple(range(-d, -1)))
        for axis, m in zip(range(-d, -1), self.modes):
            n = u_hat.shape[axis]
            if n > 2 * m:
                u_hat = torch.cat([u_hat.narrow(axis, 0, m), u_hat.narrow(axis, n - m, m)], dim=axis)
        return u_hat

    def _padded_irfftn(self, v_hat: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        """``irfftn`` of the kept modes ``v_hat`` with every other mode zero, at size ``spatial``."""
        d = len(self.modes)
        for axis, m, n in zip(range(-d, -1), self.modes, spatial):
            if n > 2 * m:
                shape = list(v_hat.shape)
                shape[axis] = n - 2 * m
                zeros = v_hat.new_zeros(shape)
                v_hat = torch.cat([v_hat.narrow(axis, 0, m), zeros, v_hat.narrow(axis, m, m)], dim=axis)
        if d > 1:
            v_hat = torch.fft.ifftn(v_hat, dim=tuple(range(-d, -1)))
        return torch.fft.irfft(v_hat, n=spatial[-1], dim=-1)

    def _mix(self, u_hat: torch.Tensor) -> torch.Tensor:
        """``v[b, o, k] = sum_i u[b, i, k] W[i, o, k]`` as one real batched matrix product.

        With :math:`W = A + iB`, the real row vector ``[Re u, Im u]`` times the block matrix
        ``[[A, B], [-B, A]]`` is ``[Re v, Im v]``; batching over the kept modes ``k`` turns
        the whole contraction into a single ``bmm`` of shape ``(K, batch, 2 in) @ (K, 2 in, 2 out)``.
        """
        batch, c_in, *kept = u_hat.shape
        c_out = self.out_channels
        k = math.prod(kept)
        u = torch.view_as_real(u_hat).reshape(batch, c_in, k, 2).permute(2, 0, 3, 1).reshape(k, batch, 2 * c_in)
        a, b = self.weight.reshape(c_in, c_out, k, 2).permute(2, 0, 1, 3).unbind(-1)  # (K, in, out) each
        w = torch.cat([torch.cat([a, b], dim=2), torch.cat([-b, a], dim=2)], dim=1)  # (K, 2 in, 2 out)
        v = torch.bmm(u, w).view(k, batch, 2, c_out).permute(1, 3, 0, 2).contiguous()
        return torch.view_as_complex(v).view(batch, c_out, *kept)
