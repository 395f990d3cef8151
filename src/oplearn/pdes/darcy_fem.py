r"""Darcy flow with a two-valued random permeability on random domains.

.. math:: -\nabla \cdot (a \nabla u) = f \ \text{in } \Omega, \qquad u = 0 \ \text{on } \partial\Omega.
"""

from __future__ import annotations

from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.geometry.families import DomainFamily
from oplearn.pdes.mesh_base import SQUARE, DomainProblem, MeshPDE
from oplearn.pdes.poisson_fem import SOLVER


class DarcyFEM(MeshPDE):
    r"""Darcy flow :math:`-\nabla \cdot (a \nabla u) = f` on a random domain, :math:`u = 0` on its boundary.

    The domain is drawn from ``family``, then the permeability as in
    :class:`oplearn.pdes.Darcy`: :math:`a = \text{high}` where a Gaussian random field
    (``GaussianRandomField(alpha, tau, boundary="neumann", modes=modes)`` on the unit square)
    is at or above ``threshold``, ``low`` elsewhere; the forcing is the constant ``forcing``.
    The solve evaluates :math:`a` exactly at its quadrature points, so the interfaces need
    not follow the mesh.

    Shapes
    ------
    inputs ``(N, 1)`` (channel ``a``), outputs ``(N, 1)`` (channel ``u``) at the mesh nodes.
    """

    name = "darcy_fem"
    input_names = ("a",)
    pointwise_residual = False

    def __init__(
        self,
        alpha: float = 2.0,
        tau: float = 3.0,
        high: float = 12.0,
        low: float = 3.0,
        threshold: float = 0.0,
        forcing: float = 1.0,
        modes: int = 16,
        family: DomainFamily | dict | None = None,
    ) -> None:
        if not (high > 0 and low > 0):
            raise ValueError(f"permeabilities must be positive, got high={high}, low={low}")
        super().__init__(family)
        self.field = GaussianRandomField(alpha, tau, boundary="neumann", modes=modes)
        self.high, self.low, self.threshold, self.forcing = float(high), float(low), float(threshold), float(forcing)

    def sample_problem(self, generator: torch.Generator | None = None) -> DomainProblem:
        domain = self.family.sample(generator)
        xi = self.field.draw(1, 2, generator)

        def permeability(x: torch.Tensor) -> torch.Tensor:
            g = self.field.at_points(xi, x, SQUARE)[0]
            return torch.where(g >= self.threshold, g.new_tensor(self.high), g.new_tensor(self.low))

        return DomainProblem(
            domain,
            lambda x: torch.full((len(x),), self.forcing, dtype=x.dtype),
            permeability,
            lambda x: permeability(x)[:, None],
        )

    def strong_residual(
        self, u: torch.Tensor, grad_u: torch.Tensor, laplacian_u: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Not defined pointwise: the permeability jumps, so its divergence form is a measure."""
        raise ValueError("darcy_fem has no pointwise residual (the permeability jumps); train it with data")

    def params(self) -> dict[str, Any]:
        f = self.field
        return {
            "alpha": f.alpha,
            "tau": f.tau,
            "high": self.high,
            "low": self.low,
            "threshold": self.threshold,
            "forcing": self.forcing,
            "modes": f.modes,
            "family": self.family.model_dump(mode="json"),
            "solver": SOLVER,
        }
