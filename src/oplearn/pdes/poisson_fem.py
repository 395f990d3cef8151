r"""Poisson and nonlinear Poisson problems with a random source on random domains.

.. math::

    -\nabla \cdot \big(c(u) \nabla u\big) = f \ \text{in } \Omega, \qquad u = 0 \ \text{on } \partial\Omega,

with :math:`c = 1` (:class:`PoissonFEM`) or :math:`c(u) = 1 + u^2` (:class:`NonlinearPoissonFEM`,
solved by Newton's method). Both map the source :math:`f` to :math:`u` and share everything
but :math:`c`, so they are one base class and two thin subclasses.
"""

from __future__ import annotations

from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.geometry.families import DomainFamily
from oplearn.pdes.mesh_base import SQUARE, DomainProblem, MeshPDE
from oplearn.solvers.fem import QUADRATIC

SOLVER = "P1 finite elements (scikit-fem), Triangle meshes, quadrature order 4"


class _RandomSourceFEM(MeshPDE):
    r""":math:`-\nabla \cdot (c(u) \nabla u) = f` on a random domain with zero Dirichlet data.

    The domain is drawn from ``family`` (:class:`~oplearn.geometry.families.DomainFamily`),
    then the source from ``GaussianRandomField(alpha, tau, sigma, boundary="neumann",
    modes=modes)`` on the unit square (covariance :math:`\sigma^2(-\Delta + \tau^2)^{-\alpha}`,
    zero mean mode), evaluated exactly at the quadrature points of the solve.
    The default :math:`\sigma` makes :math:`|u|` of order one, so :math:`c(u) = 1 + u^2`
    varies by a factor of about two.

    Shapes
    ------
    inputs ``(N, 1)`` (channel ``f``), outputs ``(N, 1)`` (channel ``u``) at the mesh nodes.
    """

    input_names = ("f",)

    def __init__(
        self,
        alpha: float = 2.0,
        tau: float = 3.0,
        sigma: float = 3000.0,
        modes: int = 16,
        family: DomainFamily | dict | None = None,
    ) -> None:
        super().__init__(family)
        self.field = GaussianRandomField(alpha, tau, sigma=sigma, boundary="neumann", modes=modes)

    def sample_problem(self, generator: torch.Generator | None = None) -> DomainProblem:
        domain = self.family.sample(generator)
        xi = self.field.draw(1, 2, generator)
        source = lambda x: self.field.at_points(xi, x, SQUARE)[0]
        return DomainProblem(domain, source, None, lambda x: source(x)[:, None])

    def params(self) -> dict[str, Any]:
        f = self.field
        return {
            "alpha": f.alpha,
            "tau": f.tau,
            "sigma": f.sigma,
            "modes": f.modes,
            "family": self.family.model_dump(mode="json"),
            "solver": SOLVER,
        }


class PoissonFEM(_RandomSourceFEM):
    r"""Poisson's equation :math:`-\Delta u = f` on random domains (see :class:`_RandomSourceFEM`)."""

    name = "poisson_fem"


class NonlinearPoissonFEM(_RandomSourceFEM):
    r"""The nonlinear Poisson equation :math:`-\nabla \cdot ((1 + u^2) \nabla u) = f` on random
    domains (see :class:`_RandomSourceFEM`), solved by Newton's method from the linear solve."""

    name = "nonlinear_poisson_fem"
    conductivity = QUADRATIC
