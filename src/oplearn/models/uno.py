"""The U-shaped neural operator (U-NO): Fourier blocks on a hierarchy of grids with skips."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from oplearn.layers.activations import activation_class
from oplearn.layers.conditioning import FiLM, check_condition
from oplearn.layers.spectral import SpectralConv, normalize_modes
from oplearn.models.fno import Pointwise
from oplearn.schema import ModelSpec, Modes, modes_per_dimension


def fourier_resample(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    r"""Trigonometric interpolation of ``x`` onto a periodic grid of ``size`` points.

    .. math:: y(\xi) = \sum_{|k_j| < \min(n_j, s_j) / 2} \hat c_k \, e^{2\pi i k \cdot \xi}

    where :math:`\hat c_k` are the Fourier coefficients of ``x`` on its own grid ``n``: the
    spectrum is truncated (coarser grid) or zero-padded (finer grid) and the Nyquist
    frequencies of even sizes are dropped, so the result is real and the same band-limited
    function on every grid that holds it.

    Shapes
    ------
    ``x: (batch, channels, *n) -> (batch, channels, *size)``
    """
    d = len(size)
    spatial = tuple(x.shape[-d:])
    if spatial == tuple(size):
        return x
    dims = tuple(range(-d, 0))
    x_hat = torch.fft.rfftn(x, dim=dims, norm="forward")  # continuous Fourier coefficients
    out = x_hat.new_zeros(*x.shape[:-d], *size[:-1], size[-1] // 2 + 1)
    keep = [(min(n, s) - 1) // 2 for n, s in zip(spatial, size)]  # highest |k| kept per axis
    src, dst = [], []
    for k, n, s in zip(keep[:-1], spatial[:-1], size[:-1]):
        src.append((slice(0, k + 1), slice(n - k, n)))
        dst.append((slice(0, k + 1), slice(s - k, s)))
    last = slice(0, keep[-1] + 1)
    # each leading axis: non-negative block and negative block (empty when k = 0)
    for choice in range(2 ** (d - 1)):
        bits = [(choice >> j) & 1 for j in range(d - 1)]
        i_src = tuple(pair[b] for pair, b in zip(src, bits)) + (last,)
        i_dst = tuple(pair[b] for pair, b in zip(dst, bits)) + (last,)
        out[(Ellipsis, *i_dst)] = x_hat[(Ellipsis, *i_src)]
    return torch.fft.irfftn(out, s=size, dim=dims, norm="forward")


class _Block(nn.Module):
    """``sigma(K v + R(W v))`` at the output size: spectral path and resampled pointwise skip."""

    def __init__(self, in_channels: int, out_channels: int, modes: tuple[int, ...], activation: nn.Module) -> None:
        super().__init__()
        self.spectral = SpectralConv(in_channels, out_channels, modes)
        self.skip = Pointwise(in_channels, out_channels)
        self.activation = activation

    def forward(self, v: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        return self.activation(self.spectral(v, size) + fourier_resample(self.skip(v), size))


class UNO(nn.Module):
    r"""U-shaped neural operator.

    .. math::

        v_0 = P(a), \qquad
        v_l = \sigma\big(K^{\downarrow}_l v_{l-1} + R_{s_l} W^{\downarrow}_l v_{l-1}\big)
        \ (l = 1..L), \\
        u_L = v_L, \qquad
        u_{l-1} = \sigma\big(K^{\uparrow}_l \tilde u_l + R_{s_{l-1}} W^{\uparrow}_l \tilde u_l\big),
        \quad \tilde u_l = [u_l, v_l] \ (l < L), \ \tilde u_L = u_L, \qquad
        u = Q([u_0, v_0]),

    where level :math:`l` lives on the grid :math:`s_l = \mathrm{round}(\text{scales}_l \, n)`
    (per axis; :math:`s_0 = n`, the input's grid) with ``width * 2**l`` channels,
    :math:`K` are spectral convolutions evaluated directly at the output grid
    (:class:`~oplearn.layers.spectral.SpectralConv` with its ``size``) keeping, between levels :math:`l - 1` and :math:`l`,
    :math:`\lfloor m_j \, \text{scales}_l \rfloor` (at least 1) of the ``modes`` :math:`m_j`
    (the coarser grid holds proportionally fewer), :math:`W` pointwise skips brought to that grid by
    Fourier interpolation :math:`R` (:func:`fourier_resample`), :math:`[\cdot, \cdot]`
    concatenation of channels (the U-Net skips) and :math:`P, Q` pointwise lifting and
    two-layer projection. Since every grid and mode count is a fraction of the input's, the
    model is resolution agnostic, and any input grid that holds ``modes`` (as for
    :class:`~oplearn.layers.spectral.SpectralConv`) holds every level's modes.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    modes : int or tuple of int
        Kept Fourier modes per spatial dimension at the input's grid (fewer at coarser levels,
        see above); an int is used for each of ``n_dim`` dimensions.
    width : int
        Channels at the finest level; level ``l`` has ``width * 2**l``.
    scales : tuple of float
        Grid size of each coarser level as a fraction of the input's, in ``(0, 1]``.
    n_dim : int
        Spatial dimensions, used only when ``modes`` is an int.
    projection_channels : int
        Hidden channels of the projection :math:`Q`.
    activation : str
        One of ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``, ``"identity"``.
    condition_channels : int
        ``> 0``: every block's output :math:`v` is modulated by a conditioning vector
        :math:`e` (e.g. a noise-level embedding) as :math:`v (1 + \gamma(e)) + \beta(e)`
        (FiLM, per channel), with :math:`\gamma, \beta` linear maps initialised to zero.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)``
    (only with ``condition_channels > 0``) ``-> (batch, out_channels, *spatial)``

    References
    ----------
    Rahman, Ross and Azizzadenesheli, U-NO: U-shaped Neural Operators, TMLR 2023.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | tuple[int, ...],
        width: int = 16,
        scales: tuple[float, ...] = (0.5, 0.25),
        n_dim: int = 2,
        projection_channels: int = 128,
        activation: str = "gelu",
        condition_channels: int = 0,
    ) -> None:
        super().__init__()
        modes = normalize_modes(modes, n_dim)
        if not scales or any(not 0.0 < s <= 1.0 for s in scales):
            raise ValueError(f"scales are grid sizes as fractions of the input's in (0, 1], got {scales}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        self.scales = tuple(float(s) for s in scales)
        act = activation_class(activation)
        channels = [width * 2**level for level in range(len(scales) + 1)]
        self.lifting = Pointwise(in_channels, width)
        grid = (1.0, *self.scales)
        block_modes = [
            tuple(max(1, math.floor(m * min(grid[l], grid[l + 1]))) for m in modes) for l in range(len(scales))
        ]
        self.down = nn.ModuleList(
            _Block(channels[l], channels[l + 1], block_modes[l], act()) for l in range(len(scales))
        )
        self.up = nn.ModuleList(
            _Block(channels[l + 1] * (1 if l == len(scales) - 1 else 2), channels[l], block_modes[l], act())
            for l in range(len(scales))
        )
        self.projection = nn.Sequential(
            Pointwise(2 * width, projection_channels), act(), Pointwise(projection_channels, out_channels)
        )
        self.condition_channels = int(condition_channels)
        if self.condition_channels:
            outputs = [channels[l + 1] for l in range(len(scales))] + [channels[l] for l in range(len(scales))]
            self.film = FiLM(self.condition_channels, outputs)

    def _modulate(self, index: int, v: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """FiLM of block ``index`` (down blocks first, then up blocks)."""
        return v if condition is None else self.film.modulate(index, v, condition)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)``
        ``-> (batch, out_channels, *spatial)``."""
        d = len(self.modes)
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNO expects input (batch, {self.in_channels}, {', '.join(['n'] * d)}), got {tuple(x.shape)}"
            )
        check_condition("UNO", self.condition_channels, condition, x.shape[0])
        spatial = tuple(x.shape[2:])
        sizes = [spatial] + [tuple(max(1, round(s * n)) for n in spatial) for s in self.scales]
        skips = [self.lifting(x)]
        for level, block in enumerate(self.down, start=1):
            skips.append(self._modulate(level - 1, block(skips[-1], sizes[level]), condition))
        u = skips[-1]
        for level in reversed(range(len(self.up))):  # block `level` maps level + 1 -> level
            if level < len(self.up) - 1:
                u = torch.cat([u, skips[level + 1]], dim=1)
            u = self._modulate(len(self.down) + level, self.up[level](u, sizes[level]), condition)
        return self.projection(torch.cat([u, skips[0]], dim=1))


class UNOConfig(ModelSpec):
    """U-shaped neural operator (:class:`oplearn.models.uno.UNO`)."""

    name: Literal["uno"] = "uno"
    conditionable: ClassVar[bool] = True
    modes: Modes = 12
    width: int = Field(default=16, gt=0)
    scales: tuple[float, ...] = (0.5, 0.25)
    projection_channels: int = Field(default=128, gt=0)

    def build(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int,
        grid_shape: tuple[int, ...] | None = None,
        condition_channels: int = 0,
    ) -> UNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        return UNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=modes_per_dimension(self.modes, n_dim),
            width=self.width,
            scales=self.scales,
            n_dim=n_dim,
            projection_channels=self.projection_channels,
            condition_channels=condition_channels,
        )


MODELS = (UNOConfig,)
