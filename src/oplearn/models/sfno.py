"""The spherical Fourier neural operator (SFNO)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from oplearn.errors import ConfigError
from oplearn.layers.spherical import KERNELS, SphericalConv
from oplearn.models.fno import FNO
from oplearn.schema import ModelSpec
from oplearn.sphere.grid import LATITUDES


class SFNO(FNO):
    r"""Spherical Fourier neural operator: the FNO with its Fourier convolutions replaced by
    spherical ones.

    .. math::

        v_0 = P(a), \qquad v_{l+1} = \sigma\big(K_l v_l + W_l v_l\big), \qquad u = Q(v_L),

    as in :class:`~oplearn.models.fno.FNO` (no activation after the last block), with
    :math:`K_l` a :class:`~oplearn.layers.spherical.SphericalConv` keeping the degrees
    :math:`l <` ``modes``. Fields are ``(batch, channels, nlat, nlon)`` on a latitude-longitude
    grid (:class:`~oplearn.sphere.grid.SphereGrid`) of any resolution that resolves ``modes``
    degrees; there is no domain padding (the sphere has no boundary). With ``"zonal"`` kernels and
    without coordinate features the operator commutes with the rotations of the sphere that map
    the grid to itself.

    Parameters
    ----------
    in_channels, out_channels : int
    modes : int
        Spherical-harmonic degrees kept by each convolution.
    width, n_layers, lifting_channels, projection_channels, activation :
        As for :class:`FNO`.
    latitudes : str
        The latitude rule of the data (``"equiangular"`` or ``"legendre-gauss"``).
    kernel : str
        ``"zonal"`` (a weight per degree: rotation-equivariant) or ``"diagonal"`` (per degree and
        order), see :class:`SphericalConv`.

    Shapes
    ------
    ``x: (batch, in_channels, nlat, nlon) -> (batch, out_channels, nlat, nlon)``

    References
    ----------
    B. Bonev et al., Spherical Fourier neural operators: learning stable dynamics on the
    sphere, ICML 2023.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int,
        width: int = 32,
        n_layers: int = 4,
        lifting_channels: int | None = None,
        projection_channels: int = 128,
        activation: str = "gelu",
        latitudes: str = "equiangular",
        kernel: str = "zonal",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            (1, 1),
            width,
            n_layers,
            2,
            lifting_channels,
            projection_channels,
            0.0,
            activation,
        )
        self.latitudes = latitudes
        self.spectral = nn.ModuleList(SphericalConv(width, width, modes, latitudes, kernel) for _ in range(n_layers))


class SFNOConfig(ModelSpec):
    """Spherical Fourier neural operator on latitude-longitude grids (:class:`oplearn.models.sfno.SFNO`)."""

    name: Literal["sfno"] = "sfno"
    modes: int = Field(default=12, gt=0)
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    lifting_channels: int | None = None
    projection_channels: int = Field(default=128, gt=0)
    latitudes: Literal[LATITUDES] = "equiangular"
    kernel: Literal[KERNELS] = "zonal"
    activation_checkpointing: bool = False

    def build(self, in_channels: int, out_channels: int, n_dim: int, grid_shape: tuple[int, ...] | None = None) -> SFNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        if n_dim != 2:
            raise ConfigError(
                f"config: model sfno acts on latitude-longitude fields (2 spatial dimensions), got {n_dim}D data"
            )
        model = SFNO(
            in_channels,
            out_channels,
            self.modes,
            self.width,
            self.n_layers,
            self.lifting_channels,
            self.projection_channels,
            latitudes=self.latitudes,
            kernel=self.kernel,
        )
        model.activation_checkpointing = self.activation_checkpointing
        return model


MODELS = (SFNOConfig,)
