"""Spectral convolution: a learned multiplier on the lowest Fourier modes of a field."""

from __future__ import annotations

import math

import torch
from torch import nn


def normalize_modes(modes: int | tuple[int, ...], n_dim: int) -> tuple[int, ...]:
    """Kept modes per dimension: an int is repeated ``n_dim`` times; 1 to 3 dimensions."""
    modes = (int(modes),) * n_dim if isinstance(modes, int) else tuple(int(m) for m in modes)
    if not 1 <= len(modes) <= 3:
        raise ValueError(f"spectral layers support 1 to 3 spatial dimensions, got modes={modes}")
    return modes


class SpectralConv(nn.Module):
    r"""Convolution with a learned kernel that is band-limited to the lowest Fourier modes.

    .. math::

        \hat v_o(k) = \sum_i \hat u_i(k) \, W_{i o}(k) \quad \text{for kept } k, \qquad
        \hat v_o(k) = 0 \quad \text{otherwise},

    with :math:`\hat u = \mathrm{rfftn}(u)` over the last ``d = len(modes)`` axes and
    :math:`v = \mathrm{irfftn}(\hat v)` at the input's own size, or at another grid ``size``
    given to :meth:`forward` (the same band-limited output sampled there, times
    :math:`\prod_j n_j / \prod_j s_j` for input size :math:`n` and output size :math:`s`,
    since ``irfftn`` divides by the output's points). The kept modes are the
    integer frequencies :math:`-m_j \le k_j < m_j` on every axis but the last and
    :math:`0 \le k_d < m_d` on the last one (the half spectrum of a real field). Since
    ``rfftn`` is unnormalised and ``irfftn`` divides by the number of points, the layer acts
    on the continuous field: a band-limited input sampled on any grid fine enough for the
    modes gives samples of the same output.

    The complex weights :math:`W` are stored as a real parameter ``weight`` of shape
    ``(in_channels, out_channels, 2 m_1, ..., 2 m_{d-1}, m_d, 2)`` (real and imaginary part
    on the trailing axis; frequency axes ordered ``0, 1, ..., m-1, -m, ..., -1``), so
    optimisers, DDP and mixed precision never see a complex parameter. They are drawn
    uniformly from ``[0, 1 / (in_channels * out_channels))``. Subclasses that parametrise
    the weight otherwise override :meth:`_init_weight` and :meth:`_weight`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    modes : tuple of int
        ``m_j`` per spatial dimension (1 to 3 dimensions).

    Shapes
    ------
    ``x: (batch, in_channels, *spatial), size -> (batch, out_channels, *size)`` (``size``
    defaults to ``spatial``), where each input and output size ``n_j`` satisfies
    ``n_j >= 2 m_j`` (``j < d``) and ``n_d // 2 + 1 >= m_d``.
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
        self._init_weight((in_channels, out_channels, *kept))

    def _init_weight(self, shape: tuple[int, ...]) -> None:
        """Create the learned parameters of the complex weight of ``shape`` ``(in, out, *kept)``:
        here the dense real parameter ``weight`` of shape ``(*shape, 2)``."""
        scale = 1.0 / (shape[0] * shape[1])
        self.weight = nn.Parameter(scale * torch.rand(*shape, 2))

    def _weight(self) -> torch.Tensor:
        """The weight ``(in_channels, out_channels, *kept, 2)`` that :meth:`_mix` applies."""
        return self.weight

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}"

    def check_size(self, spatial: tuple[int, ...], role: str = "input") -> None:
        """Raise a ValueError if a grid of size ``spatial`` (the ``role`` grid: ``"input"`` or
        ``"output"``) cannot hold the kept modes."""
        *lead, last = self.modes
        too_small = any(2 * m > n for m, n in zip(lead, spatial[:-1])) or last > spatial[-1] // 2 + 1
        if len(spatial) != len(self.modes) or too_small:
            need = tuple(2 * m for m in lead) + (max(2 * last - 2, 1),)
            raise ValueError(
                f"{role} resolution {tuple(spatial)} is too small for modes {self.modes}: a spectral "
                f"convolution keeping frequencies -m..m-1 (and 0..m-1 on the last axis) needs at least "
                f"{need} grid points; use a finer grid or fewer modes"
            )

    def forward(self, x: torch.Tensor, size: tuple[int, ...] | None = None) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *size)``, the output
        synthesised on a grid of ``size`` points per axis (default: ``spatial``)."""
        d = len(self.modes)
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralConv expects (batch, {self.in_channels}, {', '.join(['n'] * d)}), got {tuple(x.shape)}"
            )
        spatial = tuple(x.shape[-d:])
        self.check_size(spatial)
        if size is None:
            size = spatial
        else:
            size = tuple(int(n) for n in size)
            if len(size) != d:
                raise ValueError(f"SpectralConv output size must have {d} entries, got {size}")
            self.check_size(size, role="output")
        # FFTs lack bfloat16 (and half for most sizes): the spectral path always runs in at
        # least float32, also under autocast, and the result comes back in the input's dtype.
        dtype = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            u_hat = self._truncated_rfftn(x.to(dtype))  # (2 m_1, ..., m_d, batch, in, 2)
            v_hat = self._mix(u_hat, self._weight().to(dtype))  # (2 m_1, ..., m_d, batch, out, 2)
            return self._padded_irfftn(v_hat, size).to(x.dtype)

    # The kept modes travel "mode-major" as real tensors (*kept, batch, channels, 2): the
    # layout the batched matrix product over modes reads and writes, so that gathering and
    # zero-padding the modes are the only copies between the FFTs and the product.

    def _truncated_rfftn(self, x: torch.Tensor) -> torch.Tensor:
        """The kept modes of ``rfftn(x)``, mode-major. The last axis is transformed first so
        that the other axes are only transformed on its ``m_d`` kept columns."""
        d = len(self.modes)
        u_hat = torch.fft.rfft(x, dim=-1)[..., : self.modes[-1]]
        if d > 1:
            u_hat = torch.fft.fftn(u_hat, dim=tuple(range(-d, -1)))
        u = torch.view_as_real(u_hat).permute(*range(2, d + 2), 0, 1, d + 2)
        for axis, m in enumerate(self.modes[:-1]):
            n = u.shape[axis]
            if n > 2 * m:
                u = torch.cat([u.narrow(axis, 0, m), u.narrow(axis, n - m, m)], dim=axis)
        return u

    def _padded_irfftn(self, v: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        """``irfftn`` at size ``spatial`` of the mode-major kept modes ``v``, every other mode zero."""
        d = len(self.modes)
        for axis, (m, n) in enumerate(zip(self.modes[:-1], spatial)):
            if n > 2 * m:
                shape = list(v.shape)
                shape[axis] = n - 2 * m
                v = torch.cat([v.narrow(axis, 0, m), v.new_zeros(shape), v.narrow(axis, m, m)], dim=axis)
        v_hat = torch.view_as_complex(v.permute(d, d + 1, *range(d), d + 2))  # (batch, out, n_1, ..., m_d)
        if d > 1:
            v_hat = torch.fft.ifftn(v_hat, dim=tuple(range(-d, -1)))
        return torch.fft.irfft(v_hat, n=spatial[-1], dim=-1)

    def _mix(self, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``v[k, b, o] = sum_i u[k, b, i] W[i, o, k]`` as one real batched matrix product.

        With :math:`W = A + iB`, the real row vector ``[Re u_i, Im u_i]_i`` times the block
        matrix with ``2 x 2`` blocks ``[[A_io, B_io], [-B_io, A_io]]`` is
        ``[Re v_o, Im v_o]_o``; batching over the kept modes turns the contraction into one
        ``bmm`` of shape ``(K, batch, 2 in) @ (K, 2 in, 2 out)``.

        Shapes: ``u: (*kept, batch, in, 2)``, ``weight`` like :meth:`_weight`
        ``-> (*kept, batch, out, 2)``.
        """
        *kept, batch, c_in, _ = u.shape
        c_out = self.out_channels
        k = math.prod(kept)
        w = weight.reshape(c_in, c_out, k, 2).permute(2, 0, 1, 3)  # (K, in, out, 2): rows [A, B]
        a, b = w.unbind(-1)
        w = torch.stack([w, torch.stack([-b, a], dim=-1)], dim=2).view(k, 2 * c_in, 2 * c_out)
        v = torch.bmm(u.reshape(k, batch, 2 * c_in), w)
        return v.view(*kept, batch, c_out, 2)
