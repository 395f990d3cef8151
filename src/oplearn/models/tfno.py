"""The tensorised Fourier neural operator (TFNO): an FNO with low-rank spectral weights."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from torch import nn

from oplearn.layers.factorized import FactorizedSpectralConv
from oplearn.models.fno import FNO
from oplearn.schema import ModelSpec, Modes, modes_per_dimension


class TFNO(FNO):
    r"""Fourier neural operator whose spectral weights are Tucker or CP factorised.

    .. math::

        v_{l+1} = \sigma\big(K_l v_l + W_l v_l\big), \qquad
        K_l = \text{spectral convolution with } W^{(l)} = G \times_1 U^{(1)} \cdots \times_N U^{(N)}
        \ \text{(Tucker) or} \ \sum_r \bigotimes_j u^{(j)}_r \ \text{(CP)},

    otherwise exactly :class:`~oplearn.models.fno.FNO` (lifting, skips, padding, projection,
    FiLM conditioning with ``condition_channels > 0``).
    Each block's :class:`~oplearn.layers.spectral.SpectralConv` is replaced after
    ``FNO.__init__`` by a :class:`~oplearn.layers.factorized.FactorizedSpectralConv` with
    ``rank`` times its parameters; the forward pass is FNO's.

    Parameters
    ----------
    in_channels, out_channels, modes, width, n_layers, n_dim, projection_channels, padding, condition_channels
        As for :class:`~oplearn.models.fno.FNO` (GELU activation, one-layer lifting).
    factorization : str
        ``"tucker"`` or ``"cp"``.
    rank : float
        Parameters of each factorised spectral weight as a fraction of the dense one's.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial)``, ``condition: (batch, condition_channels)`` (only with
    ``condition_channels > 0``) ``-> (batch, out_channels, *spatial)``

    References
    ----------
    Kossaifi et al., Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs,
    TMLR 2024.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: int | tuple[int, ...],
        width: int = 32,
        n_layers: int = 4,
        n_dim: int = 2,
        projection_channels: int = 128,
        padding: float = 0.0,
        factorization: str = "tucker",
        rank: float = 0.1,
        condition_channels: int = 0,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            modes,
            width=width,
            n_layers=n_layers,
            n_dim=n_dim,
            projection_channels=projection_channels,
            padding=padding,
            condition_channels=condition_channels,
        )
        self.spectral = nn.ModuleList(
            FactorizedSpectralConv(width, width, self.modes, factorization=factorization, rank=rank)
            for _ in range(n_layers)
        )


class TFNOConfig(ModelSpec):
    """Tensorised Fourier neural operator (:class:`oplearn.models.tfno.TFNO`)."""

    name: Literal["tfno"] = "tfno"
    conditionable: ClassVar[bool] = True
    modes: Modes = 12
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    projection_channels: int = Field(default=128, gt=0)
    padding: float = Field(default=0.0, ge=0.0, lt=1.0)
    factorization: Literal["tucker", "cp"] = "tucker"
    rank: float = Field(default=0.1, gt=0.0)

    def build(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int,
        grid_shape: tuple[int, ...] | None = None,
        condition_channels: int = 0,
    ) -> TFNO:
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        return TFNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=modes_per_dimension(self.modes, n_dim),
            width=self.width,
            n_layers=self.n_layers,
            n_dim=n_dim,
            projection_channels=self.projection_channels,
            padding=self.padding,
            factorization=self.factorization,
            rank=self.rank,
            condition_channels=condition_channels,
        )


MODELS = (TFNOConfig,)
