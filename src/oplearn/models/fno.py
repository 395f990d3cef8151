"""The Fourier neural operator (FNO)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.checkpoint import checkpoint

from oplearn.layers.activations import activation_class
from oplearn.layers.conditioning import FiLM, check_condition
from oplearn.layers.spectral import SpectralConv, normalize_modes
from oplearn.schema import ModelSpec, Modes, modes_per_dimension


class Pointwise(nn.Module):
    r"""The same affine map of the channels at every grid point (a 1x1 convolution).

    .. math:: y_o(x) = \sum_i A_{oi} \, u_i(x) + b_o

    Computed as one batched matrix product over the flattened grid, which on CPU is
    markedly faster than a 1x1 convolution, especially in the backward pass. Initialised
    like ``nn.Conv1d(in_channels, out_channels, 1)``.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        """``A x + b``, plus ``add`` (same shape as the output) if given, in one fused product."""
        batch, _, *spatial = x.shape
        a = self.weight.expand(batch, *self.weight.shape)
        base = self.bias[None, :, None] if add is None else add.flatten(2) + self.bias[:, None]
        return torch.baddbmm(base, a, x.flatten(2)).view(batch, -1, *spatial)


class FNO(nn.Module):
    r"""Fourier neural operator.

    .. math::

        v_0 = P(a), \qquad
        v_{l+1} = \sigma\big(K_l v_l + W_l v_l\big) \ (l < L - 1), \qquad
        v_L = K_{L-1} v_{L-1} + W_{L-1} v_{L-1}, \qquad
        u = Q(v_L),

    where :math:`P` (lifting) and :math:`Q` (projection) act pointwise, :math:`K_l` is a
    :class:`~oplearn.layers.spectral.SpectralConv`, :math:`W_l` a 1x1 convolution and
    :math:`\sigma` the activation (none after the last block). Coordinate features are not
    added here: callers append them to the input channels. A conditioned FNO
    (``condition_channels > 0``) modulates each block before its activation,
    :math:`\sigma\big(\mathrm{FiLM}_l(K_l v_l + W_l v_l; e)\big)`, by a conditioning vector
    :math:`e` (:class:`~oplearn.layers.conditioning.FiLM`).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    modes : int or tuple of int
        Kept Fourier modes per spatial dimension (see :class:`SpectralConv`); an int is used
        for each of ``n_dim`` dimensions.
    width : int
        Channels of the hidden fields :math:`v_l`.
    n_layers : int
        Number of Fourier blocks :math:`L`.
    n_dim : int
        Spatial dimensions, used only when ``modes`` is an int.
    lifting_channels : int or None
        ``None`` (or ``width``): :math:`P` is one 1x1 convolution. Otherwise :math:`P` is a
        two-layer pointwise MLP ``in -> lifting_channels -> width``.
    projection_channels : int
        Hidden channels of the two-layer pointwise MLP :math:`Q`.
    padding : float
        Fraction of each spatial size appended as zeros on the far side of every axis after
        the lifting and cropped before the projection, for non-periodic problems (``0`` for
        periodic ones). A fraction, so the padded domain is the same at every resolution.
    activation : str
        One of ``"gelu"``, ``"relu"``, ``"silu"``, ``"tanh"``, ``"identity"``.
    condition_channels : int
        ``> 0``: channels of the conditioning vector :math:`e` of every block.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)`` (only with
    ``condition_channels > 0``) ``-> (batch, out_channels, *spatial)``

    References
    ----------
    Li et al., Fourier Neural Operator for Parametric Partial Differential Equations, ICLR 2021.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | tuple[int, ...],
        width: int = 32,
        n_layers: int = 4,
        n_dim: int = 2,
        lifting_channels: int | None = None,
        projection_channels: int = 128,
        padding: float = 0.0,
        activation: str = "gelu",
        condition_channels: int = 0,
    ) -> None:
        super().__init__()
        modes = normalize_modes(modes, n_dim)
        if not 0.0 <= padding < 1.0:
            raise ValueError(f"padding is a fraction of the grid size in [0, 1), got {padding}")
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes
        self.padding = float(padding)
        act = activation_class(activation)
        if lifting_channels is None or lifting_channels == width:
            self.lifting = Pointwise(in_channels, width)
        else:
            self.lifting = nn.Sequential(
                Pointwise(in_channels, lifting_channels), act(), Pointwise(lifting_channels, width)
            )
        self.spectral = nn.ModuleList(SpectralConv(width, width, modes) for _ in range(n_layers))
        self.skip = nn.ModuleList(Pointwise(width, width) for _ in range(n_layers))
        self.activation = act()
        self.projection = nn.Sequential(
            Pointwise(width, projection_channels), act(), Pointwise(projection_channels, out_channels)
        )
        self.condition_channels = int(condition_channels)
        if self.condition_channels:
            self.film = FiLM(self.condition_channels, [width] * n_layers)
        #: Recompute each block's activations in the backward pass instead of storing them
        #: (less memory for large grids, about one more forward pass of time).
        self.activation_checkpointing = False

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)``
        ``-> (batch, out_channels, *spatial)``."""
        d = len(self.modes)
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects input (batch, {self.in_channels}, {', '.join(['n'] * d)}), got {tuple(x.shape)}"
            )
        check_condition(type(self).__name__, self.condition_channels, condition, x.shape[0])
        spatial = tuple(x.shape[2:])
        v = self.lifting(x)
        pads = [round(self.padding * n) for n in spatial]
        if any(pads):
            v = F.pad(v, [p for pad in reversed(pads) for p in (0, pad)])
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        for i in range(len(self.skip)):
            if recompute:
                v = checkpoint(self._block, i, v, spatial, condition, use_reentrant=False)
            else:
                v = self._block(i, v, spatial, condition)
        if any(pads):
            v = v[(Ellipsis, *(slice(0, n) for n in spatial))]
        return self.projection(v)

    def _block(
        self, index: int, v: torch.Tensor, spatial: tuple[int, ...], condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        r"""Block ``index``: :math:`\sigma(K v + W v)` (modulated by ``condition`` first, if any),
        without the activation after the last."""
        v = self.skip[index](v, add=self._kernel(index, v, spatial))
        if condition is not None:
            v = self.film.modulate(index, v, condition)
        return self.activation(v) if index < len(self.skip) - 1 else v

    def _kernel(self, index: int, v: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        """The integral operator :math:`K_l v` of block ``index`` on the (possibly padded) hidden
        field ``v``; ``spatial`` is the unpadded grid size. Subclasses add kernels here."""
        return self.spectral[index](v)


class FNOConfig(ModelSpec):
    """Fourier neural operator (:class:`oplearn.models.FNO`)."""

    name: Literal["fno"] = "fno"
    conditionable: ClassVar[bool] = True
    modes: Modes = 12
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    lifting_channels: int | None = None
    projection_channels: int = Field(default=128, gt=0)
    padding: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation_checkpointing: bool = False

    def build(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int,
        grid_shape: tuple[int, ...] | None = None,
        condition_channels: int = 0,
    ) -> FNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        model = FNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=modes_per_dimension(self.modes, n_dim),
            width=self.width,
            n_layers=self.n_layers,
            lifting_channels=self.lifting_channels,
            projection_channels=self.projection_channels,
            padding=self.padding,
            condition_channels=condition_channels,
        )
        model.activation_checkpointing = self.activation_checkpointing
        return model


MODELS = (FNOConfig,)
