r"""How a diffusion coefficient :math:`\sigma` acts on Brownian increments.

An SDE :math:`dX = f\,dt + \sigma\,dW` with :math:`X \in \mathbb R^d`, :math:`W \in \mathbb R^m`
has one of three noise structures, each a class with the same three operations:

=================  =======================  ===============================  ========
class              :math:`\sigma` shape     :math:`\sigma\,w`                ``m``
=================  =======================  ===============================  ========
``ScalarNoise``    ``()`` or ``(batch,)``   :math:`\sigma w`                 ``d``
``DiagonalNoise``  ``(d,)`` or              :math:`\sigma \odot w`           ``d``
                   ``(batch, d)``
``MatrixNoise``    ``(d, m)`` or            :math:`\sigma w` (matrix         ``m``
                   ``(batch, d, m)``        product, per sample)
=================  =======================  ===============================  ========

A leading ``batch`` axis gives every sample its own coefficient (state- or
parameter-dependent diffusions, e.g. Black-Scholes with per-sample volatilities).

:meth:`Noise.log_normal` is :math:`\log \mathcal N(y; 0, v\,\sigma\sigma^\top)`, the density
of a Gaussian transition with variance scale ``v`` (``dt`` for Euler-Maruyama); for
``MatrixNoise`` it needs :math:`\sigma\sigma^\top` to be positive definite (``m >= d`` and
:math:`\sigma` of full rank).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


class Noise(ABC):
    """The structure of a diffusion coefficient (module docstring)."""

    def brownian_dim(self, dim: int) -> int:
        """The dimension ``m`` of the Brownian motion driving a ``dim``-dimensional state."""
        return dim

    @abstractmethod
    def apply(self, sigma: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """:math:`\\sigma w`: ``w (batch, m) -> (batch, d)``."""

    @abstractmethod
    def log_normal(self, y: torch.Tensor, sigma: torch.Tensor, variance: torch.Tensor | float) -> torch.Tensor:
        """:math:`\\log\\mathcal N(y; 0, v\\,\\sigma\\sigma^\\top)`: ``y (batch, d)``, ``v`` scalar or
        ``(batch, 1)`` -> ``(batch,)``."""


def _column(sigma: torch.Tensor) -> torch.Tensor:
    """A scalar or per-sample ``(batch,)`` coefficient as a broadcastable column."""
    sigma = torch.as_tensor(sigma)
    return sigma.reshape(-1, 1) if sigma.ndim == 1 else sigma


def _gaussian(z2: torch.Tensor, log_det: torch.Tensor, dim: int) -> torch.Tensor:
    """``-z2 / 2 - log_det - dim log(2 pi) / 2`` (``log_det`` of the covariance's square root)."""
    return -0.5 * z2 - log_det - 0.5 * dim * math.log(2 * math.pi)


class ScalarNoise(Noise):
    """:math:`\\sigma` a scalar (or one scalar per sample) times the identity."""

    def apply(self, sigma: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _column(sigma) * w

    def log_normal(self, y: torch.Tensor, sigma: torch.Tensor, variance: torch.Tensor | float) -> torch.Tensor:
        scale = _column(sigma) * torch.as_tensor(variance, dtype=y.dtype, device=y.device).sqrt()
        z2 = (y / scale).square().sum(-1)
        return _gaussian(z2, y.shape[-1] * torch.log(scale.abs()).reshape(-1), y.shape[-1])


class DiagonalNoise(Noise):
    """:math:`\\sigma = \\mathrm{diag}(s)`, ``s`` of shape ``(d,)`` or ``(batch, d)``."""

    def apply(self, sigma: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return sigma * w

    def log_normal(self, y: torch.Tensor, sigma: torch.Tensor, variance: torch.Tensor | float) -> torch.Tensor:
        scale = torch.as_tensor(sigma) * torch.as_tensor(variance, dtype=y.dtype, device=y.device).sqrt()
        scale = scale.expand_as(y)
        return _gaussian((y / scale).square().sum(-1), torch.log(scale.abs()).sum(-1), y.shape[-1])


class MatrixNoise(Noise):
    """A full ``(d, m)`` matrix :math:`\\sigma` (per sample: ``(batch, d, m)``), ``m`` Brownian
    motions (``m = d`` when ``brownian`` is not given)."""

    def __init__(self, brownian: int | None = None) -> None:
        self.brownian = brownian

    def brownian_dim(self, dim: int) -> int:
        return dim if self.brownian is None else self.brownian

    def apply(self, sigma: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...dm,...m->...d", sigma, w)

    def log_normal(self, y: torch.Tensor, sigma: torch.Tensor, variance: torch.Tensor | float) -> torch.Tensor:
        chol = torch.linalg.cholesky(sigma @ sigma.transpose(-1, -2))
        chol = chol.expand(y.shape[0], *chol.shape[-2:])
        scale = torch.as_tensor(variance, dtype=y.dtype, device=y.device).sqrt().reshape(-1, 1)
        z = torch.linalg.solve_triangular(chol, (y / scale).unsqueeze(-1), upper=False).squeeze(-1)
        log_det = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) + y.shape[-1] * torch.log(scale).reshape(-1)
        return _gaussian(z.square().sum(-1), log_det, y.shape[-1])
