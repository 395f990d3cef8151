"""A U-Net on a fixed grid: a convolutional encoder-decoder with skip connections."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from oplearn.layers.activations import activation_class
from oplearn.models.fno import Pointwise
from oplearn.schema import ModelSpec

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_TRANSPOSE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


def grid_text(shape: tuple[int, ...]) -> str:
    """``(32, 32) -> "32x32"``, for error messages."""
    return "x".join(str(n) for n in shape)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by group normalisation and the activation.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``
    """

    def __init__(self, in_channels: int, out_channels: int, n_dim: int, activation: str = "gelu") -> None:
        conv, act = CONV[n_dim], activation_class(activation)
        groups = math.gcd(8, out_channels)
        super().__init__(
            conv(in_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            act(),
            conv(out_channels, out_channels, 3, padding=1),
            nn.GroupNorm(groups, out_channels),
            act(),
        )


class UNet(nn.Module):
    r"""U-Net encoder-decoder with skip connections, tied to one grid.

    .. math::

        e_0 = B_0(a), \qquad e_l = B_l\big(\mathrm{pool}(e_{l-1})\big) \ (1 \le l \le L), \qquad
        d_L = e_L, \qquad d_{l} = B'_l\big([\mathrm{up}_l(d_{l+1}), e_l]\big) \ (l < L), \qquad
        u = Q(d_0),

    where :math:`B_l` and :math:`B'_l` are :class:`ConvBlock` s with ``width * 2**l``
    channels, ``pool`` is a 2x max-pool, :math:`\mathrm{up}_l` a stride-2 transposed
    convolution, :math:`[\cdot,\cdot]` concatenation along channels and :math:`Q` a 1x1
    convolution. Coordinate features are not added here: callers append them to the input.

    **Fixed grid.** Convolutions would run at any size, but their 3x3 kernels and the
    ``L`` pooling steps are measured in grid cells, so the receptive field in physical units
    halves when the grid is refined: at another resolution the network computes a
    different operator and its predictions are silently wrong. The model therefore
    refuses any input whose spatial shape differs from ``grid_size`` (it is the
    fixed-grid baseline against the resolution-agnostic operators).

    **Sizes not divisible by** ``2**levels``: the input is padded on the far side of every
    axis to the next multiple of ``2**levels`` by replicating the boundary values, and the
    output is cropped back, so every pooling step halves an even size.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    grid_size : tuple of int or None
        The spatial shape the network is trained on; its length is the number of spatial
        dimensions. ``None`` skips the check (then ``n_dim`` gives the dimension).
    width : int
        Channels at the finest level; level ``l`` has ``width * 2**l``.
    levels : int
        Number of 2x downsamplings :math:`L`.
    n_dim : int
        Spatial dimensions (1 to 3), used only when ``grid_size`` is ``None``.
    activation : str
        One of ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``, ``"identity"``.

    Shapes
    ------
    ``x: (batch, in_channels, *grid_size) -> (batch, out_channels, *grid_size)``

    References
    ----------
    Ronneberger, Fischer and Brox, U-Net: Convolutional Networks for Biomedical Image
    Segmentation, MICCAI 2015.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        grid_size: tuple[int, ...] | None,
        width: int = 32,
        levels: int = 3,
        n_dim: int = 2,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if grid_size is not None:
            grid_size = tuple(int(n) for n in grid_size)
            n_dim = len(grid_size)
            if any(n < 1 for n in grid_size):
                raise ValueError(f"grid_size must hold positive sizes, got {grid_size}")
        if n_dim not in CONV:
            raise ValueError(f"UNet supports 1 to 3 spatial dimensions, got {n_dim}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.grid_size = grid_size
        self.n_dim = n_dim
        self.levels = levels
        channels = [width * 2**level for level in range(levels + 1)]
        self.pool = MAX_POOL[n_dim](2)
        self.encoder = nn.ModuleList(
            ConvBlock(c_in, c_out, n_dim, activation) for c_in, c_out in zip([in_channels, *channels], channels)
        )
        self.up = nn.ModuleList(CONV_TRANSPOSE[n_dim](c, c // 2, 2, stride=2) for c in reversed(channels[1:]))
        self.decoder = nn.ModuleList(ConvBlock(c, c // 2, n_dim, activation) for c in reversed(channels[1:]))
        self.projection = Pointwise(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, in_channels, *grid_size) -> (batch, out_channels, *grid_size)``."""
        if x.ndim != self.n_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects input (batch, {self.in_channels}, {', '.join(['n'] * self.n_dim)}), got {tuple(x.shape)}"
            )
        spatial = tuple(x.shape[2:])
        if self.grid_size is not None and spatial != self.grid_size:
            raise ValueError(
                f"this U-Net is tied to the {grid_text(self.grid_size)} grid it was built for, got "
                f"{grid_text(spatial)}; resample the input to {grid_text(self.grid_size)} or train a U-Net at "
                f"{grid_text(spatial)}"
            )
        multiple = 2**self.levels
        pads = [-n % multiple for n in spatial]
        if any(pads):
            x = F.pad(x, [p for pad in reversed(pads) for p in (0, pad)], mode="replicate")
        skips = []
        v = x
        for level, block in enumerate(self.encoder):
            v = block(v if level == 0 else self.pool(v))
            skips.append(v)
        skips.pop()  # the coarsest level is the bottleneck, not a skip
        for up, block in zip(self.up, self.decoder):
            v = block(torch.cat([up(v), skips.pop()], dim=1))
        if any(pads):
            v = v[(Ellipsis, *(slice(0, n) for n in spatial))]
        return self.projection(v)


class UNetConfig(ModelSpec):
    """U-Net on the training grid (:class:`oplearn.models.unet.UNet`)."""

    name: Literal["unet"] = "unet"
    width: int = Field(default=32, gt=0)
    levels: int = Field(default=3, gt=0)

    def build(self, in_channels: int, out_channels: int, n_dim: int, grid_shape: tuple[int, ...] | None = None) -> UNet:
        """``grid_shape`` is the training grid; without it the network accepts any shape."""
        if grid_shape is not None and len(grid_shape) != n_dim:
            raise ValueError(f"grid_shape {tuple(grid_shape)} does not have n_dim={n_dim} sizes")
        return UNet(
            in_channels=in_channels,
            out_channels=out_channels,
            grid_size=None if grid_shape is None else tuple(grid_shape),
            width=self.width,
            levels=self.levels,
            n_dim=n_dim,
        )


MODELS = (UNetConfig,)
