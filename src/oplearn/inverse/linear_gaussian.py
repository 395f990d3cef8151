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

import torch

from oplearn.grids import Grid
from oplearn.inverse.observations import Observation
from oplearn.pdes.base import PDE


class GaussianDenoiser:
    r"""The exact denoiser of :math:`\mathcal N(0, K)` under noise :math:`\sigma\epsilon`, :math:`\epsilon \sim \mathcal N(0, N)`:
    :math:`D(x, \sigma) = K (K + \sigma^2 N)^{-1} x` (:math:`N = I` by default).

    Evaluated in the eigenbasis of :math:`M = L^{-1} K L^{-\top} = U \Lambda U^\top`, :math:`N = L L^\top`:
    :math:`D = L U \operatorname{diag}(\lambda / (\lambda + \sigma^2)) U^\top L^{-1} x`. ``K`` may be
    singular, ``N`` must be positive definite.

    Shapes: ``x (batch, *shape), sigma (batch,) -> (batch, *shape)`` with ``K``, ``N`` of size ``prod(shape)``.
    """

    def __init__(self, covariance: torch.Tensor, noise_covariance: torch.Tensor | None = None):
        k = covariance.double()
        if noise_covariance is None:
            eigenvalues, vectors = torch.linalg.eigh(k)
            self.left = self.right = vectors
        else:
            chol = torch.linalg.cholesky(noise_covariance.double())
            chol_inv = torch.linalg.solve_triangular(chol, torch.eye(len(chol), dtype=torch.float64), upper=False)
            eigenvalues, vectors = torch.linalg.eigh(chol_inv @ k @ chol_inv.T)
            self.left, self.right = chol @ vectors, chol_inv.T @ vectors
        self.eigenvalues = eigenvalues.clamp_min(0)

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
        Nodes per dimension (the matrices have ``2 n^2`` rows: keep ``n`` small, e.g. 16-32).
    noise : WhiteNoise or GRFNoise, optional
        The forward noise of the diffusion in the standardised coordinates (per channel); white
        by default.
    """

    def __init__(self, pde: PDE, resolution: int, noise=None):
        self.pde = pde
        self.grid: Grid = pde.grid(resolution)
        n = resolution * resolution
        self.shape = (2, resolution, resolution)
        c = pde.field.covariance(self.grid)
        unit_sources = torch.eye(n, dtype=torch.float64).reshape(n, 1, resolution, resolution)
        solve = pde.solve(unit_sources, self.grid).reshape(n, n).T  # column j: the solution of source e_j
        self.solution_operator = solve
        joint = torch.cat([torch.eye(n, dtype=torch.float64), solve])  # x = joint @ f
        self.covariance = joint @ c @ joint.T
        self.scale = self.covariance.diagonal().reshape(2, n).mean(dim=1).sqrt()  # S, per channel
        s_inv = (1 / self.scale).repeat_interleave(n)
        noise_covariance = None
        if noise is not None:  # N applied to the unit fields of both channels
            unit = torch.eye(2 * n, dtype=torch.float64).reshape(2 * n, *self.shape)
            noise_covariance = noise.covariance(unit).reshape(2 * n, 2 * n)
        self.noise = noise
        self.denoiser = GaussianDenoiser(s_inv[:, None] * self.covariance * s_inv[None, :], noise_covariance)

    def fields(self, z: torch.Tensor) -> torch.Tensor:
        """The physical (f, u) of standardised fields: ``(batch, 2, n, n) -> (batch, 2, n, n)``."""
        return z * self.scale.to(z).reshape(1, 2, 1, 1)

    def sample_prior(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` draws of (f, u): ``(count, 2, n, n)``, float64."""
        f = self.pde.sample_input(count, self.grid, generator)
        return torch.cat([f, self.pde.solve(f, self.grid)], dim=1)

    def posterior(self, observation: Observation, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior mean ``(batch, 2, n, n)`` and standard deviation ``(2, n, n)`` for ``y (batch, m)``."""
        k = self.covariance
        idx = observation.index
        k_ay = k[:, idx]  # K A^T
        gram = k[idx][:, idx] + observation.noise**2 * torch.eye(len(idx), dtype=torch.float64)
        gain = torch.linalg.solve(gram, k_ay.T).T  # K A^T (A K A^T + s^2)^-1
        y = y if y.ndim == 2 else y.unsqueeze(0)
        mean = y.double() @ gain.T
        cov = k - gain @ k_ay.T
        std = cov.diagonal().clamp_min(0).sqrt()
        return mean.reshape(-1, *self.shape), std.reshape(self.shape)
