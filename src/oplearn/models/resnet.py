"""The dilated residual network (Dil-ResNet) baseline of learned simulators."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from oplearn.layers.activations import activation_class
from oplearn.models.fno import Pointwise
from oplearn.models.unet import CONV
from oplearn.schema import ModelSpec

DILATIONS = (1, 2, 4, 8, 4, 2, 1)


class DilatedBlock(nn.Module):
    r"""Dilated 3x3 convolutions with rates ``(1, 2, 4, 8, 4, 2, 1)`` and a residual connection.

    .. math:: v \mapsto v + C_7\big(\sigma(C_6(\cdots \sigma(C_1 v)))\big)

    where :math:`C_j` is a 3x3 convolution with dilation ``DILATIONS[j]`` and "same"
    padding. The receptive field grows to ``1 + 2 * sum(DILATIONS) = 45`` cells.

    Shapes
    ------
    ``x: (batch, width, *spatial) -> (batch, width, *spatial)``
    """

    def __init__(self, width: int, n_dim: int, padding_mode: str = "zeros", activation: str = "relu") -> None:
        super().__init__()
        conv = CONV[n_dim]
        self.convs = nn.ModuleList(
            conv(width, width, 3, padding=r, dilation=r, padding_mode=padding_mode) for r in DILATIONS
        )
        self.activation = activation_class(activation)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x
        last = len(self.convs) - 1
        for j, conv in enumerate(self.convs):
            v = conv(v)
            if j < last:
                v = self.activation(v)
        return x + v


class DilResNet(nn.Module):
    r"""Dilated residual network: a pointwise encoder, dilated residual blocks, a pointwise decoder.

    .. math:: v_0 = P(a), \qquad v_{b+1} = \sigma\big(D_b(v_b)\big), \qquad u = Q(v_{N})

    with :math:`P, Q` 1x1 convolutions, :math:`D_b` a :class:`DilatedBlock` and
    :math:`\sigma` the activation (none after the last block).

    The network is convolutional, so it runs at any resolution, but it is **not**
    discretisation-convergent: kernels and dilations are counted in grid cells, so the
    physical receptive field shrinks as the grid is refined and the outputs on one field
    sampled at two resolutions do not approach each other. Like the U-Net it is a
    baseline for the grid it was trained on; unlike the U-Net it does not refuse others.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    width : int
        Channels of the hidden fields (48 in the reference).
    n_blocks : int
        Number of dilated blocks :math:`N` (4 in the reference).
    n_dim : int
        Spatial dimensions (1 to 3).
    periodic : bool
        Circular padding in the convolutions (for periodic data) instead of zeros.
    activation : str
        One of ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``, ``"identity"``.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``

    References
    ----------
    Stachenfeld et al., Learned Coarse Models for Efficient Turbulence Simulation, ICLR 2022
    (arXiv 2112.15275, 2021).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 48,
        n_blocks: int = 4,
        n_dim: int = 2,
        periodic: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if n_dim not in CONV:
            raise ValueError(f"DilResNet supports 1 to 3 spatial dimensions, got {n_dim}")
        if n_blocks < 1:
            raise ValueError(f"n_blocks must be >= 1, got {n_blocks}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_dim = n_dim
        padding_mode = "circular" if periodic else "zeros"
        self.encoder = Pointwise(in_channels, width)
        self.blocks = nn.ModuleList(DilatedBlock(width, n_dim, padding_mode, activation) for _ in range(n_blocks))
        self.activation = activation_class(activation)()
        self.decoder = Pointwise(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``."""
        if x.ndim != self.n_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DilResNet expects input (batch, {self.in_channels}, {', '.join(['n'] * self.n_dim)}), "
                f"got {tuple(x.shape)}"
            )
        v = self.encoder(x)
        last = len(self.blocks) - 1
        for b, block in enumerate(self.blocks):
            v = block(v)
            if b < last:
                v = self.activation(v)
        return self.decoder(v)


class ResNetConfig(ModelSpec):
    """Dilated residual network (:class:`oplearn.models.resnet.DilResNet`)."""

    name: Literal["dil_resnet"] = "dil_resnet"
    width: int = Field(default=48, gt=0)
    n_blocks: int = Field(default=4, gt=0)
    periodic: bool = False

    def build(
        self, in_channels: int, out_channels: int, n_dim: int, grid_shape: tuple[int, ...] | None = None
    ) -> DilResNet:
        """``grid_shape`` is accepted for a uniform call and ignored: the network runs on any grid."""
        return DilResNet(
            in_channels=in_channels,
            out_channels=out_channels,
            width=self.width,
            n_blocks=self.n_blocks,
            n_dim=n_dim,
            periodic=self.periodic,
        )


MODELS = (ResNetConfig,)
