"""FNO with localized kernels: differential and local-integral branches in every block."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from oplearn.layers.local import DifferentialConv, LocalIntegralConv, grid_spacing
from oplearn.models.fno import FNO
from oplearn.schema import ModelSpec, Modes, modes_per_dimension


class LocalFNO(FNO):
    r"""Fourier neural operator whose blocks add localized kernels to the global one.

    .. math::

        v_{l+1} = \sigma\big(K_l v_l + D_l v_l + I_l v_l + W_l v_l\big),

    as in :class:`~oplearn.models.fno.FNO` (no activation after the last block), where
    :math:`K_l` is the spectral convolution, :math:`W_l` the pointwise map, :math:`D_l` a
    :class:`~oplearn.layers.local.DifferentialConv` (if ``differential``) and :math:`I_l` a
    :class:`~oplearn.layers.local.LocalIntegralConv` of physical radius ``radius`` (if
    ``local_integral``).

    The local branches act on the physical domain only: with domain padding (non-periodic
    problems) they see the hidden field cropped to the input grid, extended past its edges
    as their boundary rule says (replicated values for :math:`D_l`, zeros for :math:`I_l`),
    and add nothing in the padded region, which only serves the periodic FFT of :math:`K_l`.
    Otherwise the jump from the field to the zero padding, of size :math:`|v|`, would reach
    :math:`D_l` as a spurious :math:`|v| / h` that grows under refinement. Their spacing is
    that of the input grid, so the padding does not change their scale either.

    The differential stencils are measured in units of ``reference_spacing`` :math:`h_0`
    (see :class:`~oplearn.layers.local.DifferentialConv`): near that resolution
    :math:`D_l` starts and trains like an ordinary ``3^d`` convolution, at the scale of the
    spectral and pointwise branches. In units of the grid spacing instead, a freshly
    initialised :math:`D_l` maps the jumps of a discontinuous coefficient (Darcy) to outputs
    of order :math:`1 / h`, ten to a thousand times the FNO's, and its optimiser steps move
    the output by :math:`\mathrm{lr} / h`; training then stalls far above the plain FNO.
    :math:`h_0` rescales the parameters only, so the limit :math:`h \to 0` is unchanged.

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
    reference_spacing : float
        Unit :math:`h_0` of the differential stencils, in the units of ``domain_length``.
    **fno_kwargs
        ``width``, ``n_layers``, ``n_dim``, ``lifting_channels``, ``projection_channels``,
        ``padding``, ``activation``, ``condition_channels``: as for :class:`FNO` (a conditioned
        block is modulated after all its kernels are summed).

    Shapes
    ------
    ``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)`` (only with
    ``condition_channels > 0``) ``-> (batch, out_channels, *spatial)``

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
        reference_spacing: float = 1 / 64,
        **fno_kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, modes, **fno_kwargs)
        n_dim, width, n_layers = len(self.modes), self.skip[0].weight.shape[0], len(self.skip)
        self.periodic = self.padding == 0 if periodic is None else bool(periodic)
        self.domain_length = domain_length
        geometry = dict(n_dim=n_dim, periodic=self.periodic, domain_length=domain_length)
        stencil = dict(reference_spacing=reference_spacing, **geometry)
        self.differential = (
            nn.ModuleList(DifferentialConv(width, width, **stencil) for _ in range(n_layers)) if differential else None
        )
        self.local_integral = (
            nn.ModuleList(LocalIntegralConv(width, width, radius=radius, **geometry) for _ in range(n_layers))
            if local_integral
            else None
        )

    def _kernel(self, index: int, v: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
        """:math:`K_l v + D_l v + I_l v`; the local branches act on the physical domain only."""
        kernel = self.spectral[index](v)
        branches = [layers[index] for layers in (self.differential, self.local_integral) if layers is not None]
        if not branches:
            return kernel
        spacing = grid_spacing(spatial, self.domain_length, self.periodic)
        u = v[(Ellipsis, *(slice(0, n) for n in spatial))]  # crop the domain padding
        local = sum(branch(u, spacing) for branch in branches)
        pads = [size - n for size, n in zip(v.shape[2:], spatial)]
        if any(pads):
            local = F.pad(local, [p for pad in reversed(pads) for p in (0, pad)])
        return kernel + local


class LocalFNOConfig(ModelSpec):
    """FNO with differential and local-integral kernels (:class:`oplearn.models.local_fno.LocalFNO`)."""

    name: Literal["local_fno"] = "local_fno"
    conditionable: ClassVar[bool] = True
    modes: Modes = 12
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    projection_channels: int = Field(default=128, gt=0)
    padding: float = Field(default=0.0, ge=0.0, lt=1.0)
    differential: bool = True
    local_integral: bool = True
    radius: float = Field(default=0.1, gt=0.0)
    reference_spacing: float = Field(default=1 / 64, gt=0.0)

    def build(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int,
        grid_shape: tuple[int, ...] | None = None,
        condition_channels: int = 0,
    ) -> LocalFNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        return LocalFNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=modes_per_dimension(self.modes, n_dim),
            differential=self.differential,
            local_integral=self.local_integral,
            radius=self.radius,
            reference_spacing=self.reference_spacing,
            width=self.width,
            n_layers=self.n_layers,
            projection_channels=self.projection_channels,
            padding=self.padding,
            condition_channels=condition_channels,
        )


MODELS = (LocalFNOConfig,)
