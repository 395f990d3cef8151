r"""A linear-Gaussian inverse problem whose posterior is known exactly: Poisson with a GRF source.

The source :math:`f \sim \mathcal N(0, C)` is the PDE's Gaussian random field (exact covariance
:meth:`oplearn.fields.GaussianRandomField.covariance`) and :math:`u = L f` is the discrete
solution (:math:`L` built column by column from the PDE's reference solver), so the joint field
:math:`x = (f, u)` is Gaussian with covariance

.. math:: K = \begin{pmatrix} C & C L^\top \\ L C & L C L^\top \end{pmatrix}.

For a selection :math:`A` with noise :math:`s` (:mod:`oplearn.inverse.observations`) the
posterior is Gaussian with

.. math::

    \mu = K A^\top (A K A^\top + s^2 I)^{-1} y, \qquad
    \Sigma = K - K A^\top (A K A^\top + s^2 I)^{-1} A K,

The diffusion prior lives, as a trained one would, in standardised coordinates
:math:`z = S^{-1} x` with :math:`S` the per-channel prior standard deviation (mean over nodes),
so both channels have unit scale; its exact denoiser is
:math:`D(z, \sigma) = K_z (K_z + \sigma^2 I)^{-1} z`, :math:`K_z = S^{-1} K S^{-1}`, and
:meth:`LinearGaussianPoisson.fields` maps :math:`z` back to :math:`x`. The samplers and the
guidance can therefore be checked against the exact answer.

Shapes
------
fields ``(batch, 2, n, n)`` (channels ``f``, ``u``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from oplearn.grids import Grid
from oplearn.inverse.observations import Observation
from oplearn.pdes.base import PDE

if TYPE_CHECKING:
    from oplearn.diffusion.noise import GRFNoise, WhiteNoise

#: Eigenvalues of the whitened prior covariance below this fraction of the largest are dropped.
RANK_TOLERANCE = 1e-12


class GaussianDenoiser:
    r"""The exact denoiser of :math:`\mathcal N(0, K)` under noise :math:`\sigma\epsilon`, :math:`\epsilon \sim \mathcal N(0, N)`:
    :math:`D(x, \sigma) = K (K + \sigma^2 N)^{-1} x` (:math:`N = I` by default).

    Evaluated in the eigenbasis of :math:`M = L^{-1} K L^{-\top} = U \Lambda U^\top`, :math:`N = L L^\top`:
    :math:`D = L U \operatorname{diag}(\lambda / (\lambda + \sigma^2)) U^\top L^{-1} x`, keeping only the
    eigenvalues above :data:`RANK_TOLERANCE` of the largest (``K`` may be singular; ``N`` must
    be positive definite). Given a factor :math:`F` with :math:`K = F F^\top` (``d x r``), the
    eigenpairs come from the ``r x r`` matrix :math:`W^\top W`, :math:`W = L^{-1} F`, and
    :math:`U = W Q \Lambda^{-1/2}`: no ``d x d`` eigendecomposition, and each call costs two
    ``d x rank`` products.

    Shapes: ``x (batch, *shape), sigma (batch,) -> (batch, *shape)`` with ``K``, ``N`` of size
    ``d = prod(shape)``.
    """

    def __init__(
        self,
        covariance: torch.Tensor | None = None,
        noise_covariance: torch.Tensor | None = None,
        factor: torch.Tensor | None = None,
    ) -> None:
        if (covariance is None) == (factor is None):
            raise ValueError("give exactly one of covariance and factor")
        d = len(covariance if factor is None else factor)
        chol = None if noise_covariance is None else torch.linalg.cholesky(noise_covariance.double())

        def whiten(a: torch.Tensor) -> torch.Tensor:  # L^-1 a
            return a if chol is None else torch.linalg.solve_triangular(chol, a, upper=False)

        if factor is None:
            k = whiten(whiten(covariance.double()).T)  # L^-1 K L^-T (K symmetric)
            eigenvalues, vectors = torch.linalg.eigh(0.5 * (k + k.T))
        else:
            w = whiten(factor.double())
            eigenvalues, q = torch.linalg.eigh(w.T @ w)
            vectors = w @ (q / eigenvalues.clamp_min(torch.finfo(torch.float64).tiny).sqrt())
        keep = eigenvalues > RANK_TOLERANCE * eigenvalues.max()
        self.eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
        if chol is None:
            self.left = self.right = vectors
        else:
            self.left = chol @ vectors
            self.right = torch.linalg.solve_triangular(chol.T, vectors, upper=True)
        self.dimension = d

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        coef = x.flatten(1) @ self.right.to(x)
        gain = self.eigenvalues.to(x) / (self.eigenvalues.to(x) + sigma.to(x).reshape(-1, 1) ** 2)
        return ((coef * gain) @ self.left.to(x).T).reshape(x.shape)


class LinearGaussianPoisson:
    """The joint Gaussian prior of (source, solution) of a Poisson / Helmholtz PDE on an ``n x n`` grid.

    Parameters
    ----------
    pde : Poisson or Helmholtz (a PDE with a Gaussian source ``pde.field`` and a linear solver)
        Its source field is the prior; its solver gives the linear map :math:`L`.
    resolution : int
        Nodes per dimension (dense ``n^2 x n^2`` matrices: 64 takes minutes and a few GiB).
    noise : WhiteNoise or GRFNoise, optional
        The forward noise of the diffusion in the standardised coordinates (per channel); white
        by default.

    Attributes
    ----------
    source_covariance : ``(n^2, n^2)``
        :math:`C`.
    solution_operator : ``(n^2, n^2)``
        :math:`L`.
    scale : ``(2,)``
        :math:`S`.
    denoiser : GaussianDenoiser
        The denoiser of the standardised joint prior, built from the factor
        :math:`S^{-1} [I; L] C^{1/2}` (rank ``n^2``).
    """

    def __init__(self, pde: PDE, resolution: int, noise: WhiteNoise | GRFNoise | None = None) -> None:
        self.pde = pde
        self.grid: Grid = pde.grid(resolution)
        n = resolution * resolution
        self.shape = (2, resolution, resolution)
        self.source_covariance = c = pde.field.covariance(self.grid)
        unit_sources = torch.eye(n, dtype=torch.float64).reshape(n, 1, resolution, resolution)
        self.solution_operator = (
            pde.solve(unit_sources, self.grid).reshape(n, n).T
        )  # column j: the solution of source e_j
        self._joint = torch.cat([torch.eye(n, dtype=torch.float64), self.solution_operator])  # x = joint @ f
        variance = ((self._joint @ c) * self._joint).sum(dim=1)  # diag(K)
        self.scale = variance.reshape(2, n).mean(dim=1).sqrt()  # S, per channel
        values, vectors = torch.linalg.eigh(c)
        root = vectors * values.clamp_min(0).sqrt()  # C = root root^T
        noise_covariance = None
        if noise is not None:  # N applied to the unit fields of both channels
            unit = torch.eye(2 * n, dtype=torch.float64).reshape(2 * n, *self.shape)
            noise_covariance = noise.covariance(unit).reshape(2 * n, 2 * n)
        self.noise = noise
        s_inv = (1 / self.scale).repeat_interleave(n)
        self.denoiser = GaussianDenoiser(
            noise_covariance=noise_covariance, factor=s_inv[:, None] * (self._joint @ root)
        )

    def fields(self, z: torch.Tensor) -> torch.Tensor:
        """The physical (f, u) of standardised fields: ``(batch, 2, n, n) -> (batch, 2, n, n)``."""
        return z * self.scale.to(z).reshape(1, 2, 1, 1)

    def sample_prior(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` draws of (f, u): ``(count, 2, n, n)``, float64."""
        f = self.pde.sample_input(count, self.grid, generator)
        return torch.cat([f, self.pde.solve(f, self.grid)], dim=1)

    def _gain(self, observation: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """The Kalman gain :math:`K A^\top (A K A^\top + s^2)^{-1}` and :math:`K A^\top`, ``(2 n^2, m)`` each."""
        rows = self._joint[observation.index]  # A [I; L]
        k_ay = self._joint @ (self.source_covariance @ rows.T)  # K A^T
        gram = k_ay[observation.index] + observation.noise**2 * torch.eye(len(rows), dtype=torch.float64)
        return torch.linalg.solve(gram, k_ay.T).T, k_ay

    def posterior(self, observation: Observation, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior mean ``(batch, 2, n, n)`` and standard deviation ``(2, n, n)`` for ``y (batch, m)``."""
        gain, k_ay = self._gain(observation)
        y = y if y.ndim == 2 else y.unsqueeze(0)
        mean = y.double() @ gain.T
        variance = ((self._joint @ self.source_covariance) * self._joint).sum(dim=1) - (gain * k_ay).sum(dim=1)
        return mean.reshape(-1, *self.shape), variance.clamp_min(0).sqrt().reshape(self.shape)

    def posterior_samples(
        self, observation: Observation, y: torch.Tensor, count: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        r"""``count`` exact posterior draws for ``y (m,)`` by Matheron's rule, :math:`x' + G(y - A x' - s\epsilon)`
        with :math:`x'` a prior draw and :math:`G` the Kalman gain: ``(count, 2, n, n)``, float64."""
        gain, _ = self._gain(observation)
        prior = self.sample_prior(count, generator)
        simulated = observation.observe(prior, generator)
        return prior + ((y.double().reshape(1, -1) - simulated) @ gain.T).reshape(prior.shape)

    def decoupled_conditional(self, observation: Observation, y: torch.Tensor) -> Callable[..., torch.Tensor]:
        r"""The exact decoupled conditional :math:`p(z_0 \mid z_\sigma, y)` of the standardised prior, as a
        DAPS ``conditional`` (:mod:`oplearn.inverse.daps`): the Gaussian with Tweedie's mean
        :math:`D(z_\sigma)` and covariance :math:`\sigma^2 J N = \sigma^2 U_L \operatorname{diag}(\lambda / (\lambda + \sigma^2)) U_L^\top`
        (:class:`GaussianDenoiser`'s eigenbasis, :math:`U_L` its ``left``) times the likelihood of ``y (m,)``,
        drawn by Matheron's rule. Returns ``draw(z_sigma, z0_hat, sigma, generator) -> z0`` on
        ``(batch, 2, n, n)``; ``z0_hat`` (the ODE end point) is not used."""
        left, lam = self.denoiser.left, self.denoiser.eigenvalues  # (d, rank), (rank,)
        observed_left = observation.apply(self.fields(left.T.reshape(-1, *self.shape)))  # (rank, m): (B U_L)^T
        s = observation.noise

        def draw(
            z: torch.Tensor, z0_hat: torch.Tensor, sigma: float, generator: torch.Generator | None = None
        ) -> torch.Tensor:
            gain = (lam / (lam + sigma**2)).to(z)
            mean = self.denoiser(z, torch.full((len(z),), sigma, dtype=z.dtype))
            xi = torch.randn(len(z), len(lam), generator=generator, dtype=z.dtype)
            prior = mean + sigma * ((xi * gain.sqrt()) @ left.T.to(z)).reshape(z.shape)
            kick = s * torch.randn(len(z), len(observation), generator=generator, dtype=z.dtype)
            misfit = y.to(z).reshape(1, -1) - observation.apply(self.fields(prior)) - kick
            b = observed_left.to(z)
            system = sigma**2 * (b.T * gain) @ b + s**2 * torch.eye(len(observation), dtype=z.dtype)
            weights = torch.linalg.solve(system, misfit.T).T  # (batch, m)
            return prior + sigma**2 * (((weights @ b.T) * gain) @ left.T.to(z)).reshape(z.shape)

        return draw
