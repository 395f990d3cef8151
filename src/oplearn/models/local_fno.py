"""FNO with localized kernels: differential and local-integral branches in every block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from oplearn.schema import Strict
from oplearn.layers.local import DifferentialConv, LocalIntegralConv, grid_spacing
from oplearn.models.fno import FNO


class LocalFNO(FNO):
    r"""Fourier neural operator whose blocks add localized kernels to the global one.

    .. math::

        v_{l+1} = \sigma\big(K_l v_l + D_l v_l + I_l v_l + W_l v_l\big),

    as in :class:`~oplearn.models.fno.FNO` (no activation after the last block), where
    :math:`K_l` is the spectral convolution, :math:`W_l` the pointwise map, :math:`D_l` a
    :class:`~oplearn.layers.local.DifferentialConv` (if ``differential``) and :math:`I_l` a
    :class:`~oplearn.layers.local.LocalIntegralConv` of physical radius ``radius`` (if
    ``local_integral``). Both local branches are built from the spacing of the *unpadded*
    input grid, so the optional domain padding of the FNO does not change their scale.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and output fields.
    modes : int or tuple of int
        Kept Fourier modes per dimension (see :class:`FNO`).
    differential, local_integral : bool
        Which local branches to add (with both off this is the plain FNO).
    radius : float
        Support radius of the local integral kernels, in units of ``domain_length``.
    periodic : bool or None
        Grid convention and boundary extension of the local branches; ``None`` means periodic
        exactly when ``padding == 0`` (the FNO convention for periodic problems).
    domain_length : float or sequence of float
        Side length(s) of the physical domain.
    **fno_kwargs
        ``width``, ``n_layers``, ``n_dim``, ``lifting_channels``, ``projection_channels``,
        ``padding``, ``activation``: as for :class:`FNO`.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``

    References
    ----------
    Liu-Schiaffini et al., Neural Operators with Localized Integral and Differential Kernels,
    ICML 2024.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | tuple[int, ...],
        differential: bool = True,
        local_integral: bool = True,
        radius: float = 0.1,
        periodic: bool | None = None,
        domain_length: float | Sequence[float] = 1.0,
        **fno_kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, modes, **fno_kwargs)
        n_dim, width, n_layers = len(self.modes), self.skip[0].weight.shape[0], len(self.skip)
        self.periodic = self.padding == 0 if periodic is None else bool(periodic)
        self.domain_length = domain_length
        geometry = dict(n_dim=n_dim, periodic=self.periodic, domain_length=domain_length)
        self.differential = (
            nn.ModuleList(DifferentialConv(width, width, **geometry) for _ in range(n_layers)) if differential else None
        )
        self.local_integral = (
            nn.ModuleList(LocalIntegralConv(width, width, radius=radius, **geometry) for _ in range(n_layers))
            if local_integral
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``."""
        d = len(self.modes)
        if x.ndim != d + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"LocalFNO expects input (batch, {self.in_channels}, {', '.join(['n'] * d)}), got {tuple(x.shape)}"
            )
        spatial = tuple(x.shape[2:])
        spacing = grid_spacing(spatial, self.domain_length, self.periodic)
        v = self.lifting(x)
        pads = [round(self.padding * n) for n in spatial]
        if any(pads):
            v = F.pad(v, [p for pad in reversed(pads) for p in (0, pad)])
        last = len(self.spectral) - 1
        for i in range(last + 1):
            kernel = self.spectral[i](v)
            if self.differential is not None:
                kernel = kernel + self.differential[i](v, spacing)
            if self.local_integral is not None:
                kernel = kernel + self.local_integral[i](v, spacing)
            v = self.skip[i](v, add=kernel)
            if i < last:
                v = self.activation(v)
        if any(pads):
            v = v[(Ellipsis, *(slice(0, n) for n in spatial))]
        return self.projection(v)


class LocalFNOConfig(Strict):
    """FNO with differential and local-integral kernels (:class:`oplearn.models.local_fno.LocalFNO`)."""

    name: Literal["local_fno"] = "local_fno"
    modes: int = Field(default=12, gt=0)
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    projection_channels: int = Field(default=128, gt=0)
    padding: float = Field(default=0.0, ge=0.0, lt=1.0)
    differential: bool = True
    local_integral: bool = True
    radius: float = Field(default=0.1, gt=0.0)

    def build(self, in_channels: int, out_channels: int, n_dim: int, grid_shape: tuple[int, ...] | None = None) -> LocalFNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        return LocalFNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=(self.modes,) * n_dim,
            differential=self.differential,
            local_integral=self.local_integral,
            radius=self.radius,
            width=self.width,
            n_layers=self.n_layers,
            projection_channels=self.projection_channels,
            padding=self.padding,
        )
