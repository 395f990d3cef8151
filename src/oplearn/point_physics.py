r"""Physics-informed losses on point clouds, by automatic differentiation in the query points.

For an operator whose output :math:`u(y)` is a smooth function of the query point
:math:`y` (the :class:`~oplearn.models.mollified_gno.MollifiedGNO`), the derivatives
:math:`\nabla u` and :math:`\Delta u` at any points are exact by autograd, so the strong
residual of the PDE can be taken where the data are, without a mesh or a stencil:

.. math::

    L = \frac{\operatorname{mean}_{y \in \Omega} \, r(y)^2}{\operatorname{mean}_{y \in \Omega} f(y)^2}
        + \lambda_b \, \frac{\operatorname{mean}_{y \in \partial\Omega} (u(y) - g(y))^2}{\operatorname{mean}_{y \in \Omega} f(y)^2 \, \ell^4},

with the residual :math:`r = -c(u)\Delta u - c'(u)|\nabla u|^2 - f` of the PDE object
(:meth:`oplearn.pdes.mesh_base.MeshPDE.strong_residual`) and zero Dirichlet data
:math:`g = 0` (the families of :mod:`oplearn.pdes.poisson_fem`). Both terms are divided by
the mean square of :math:`f` (the boundary term also by :math:`\ell^4`, :math:`\ell` a length
scale of the domain), so the loss does not depend on the units of :math:`f`.

Shapes: ``points (Q, d)``, ``inputs (Q, c_in)`` (the PDE's input channels at the points),
``boundary (Q,)`` (which points lie on the boundary).

References
----------
Lin et al., Enabling Automatic Differentiation with Mollified Graph Neural Operators, 2025.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from oplearn.pdes.mesh_base import MeshPDE

QueryFunction = Callable[[torch.Tensor], torch.Tensor]  # query points (Q, d) -> values (Q, 1)


def query_derivatives(
    fn: QueryFunction, points: torch.Tensor, create_graph: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r""":math:`u`, :math:`\nabla u` and :math:`\Delta u` of ``fn`` at ``points`` by autograd.

    ``fn`` must evaluate each query point independently of the others (true for operators
    whose output at :math:`y` is an integral around :math:`y`), so derivatives of the sum are
    the pointwise derivatives.

    Shapes: ``points (Q, d) -> u (Q,), grad (Q, d), laplacian (Q,)``.
    """
    y = points.detach().requires_grad_(True)
    u = fn(y)[:, 0]
    (grad,) = torch.autograd.grad(u.sum(), y, create_graph=True)
    laplacian = sum(
        torch.autograd.grad(grad[:, k].sum(), y, create_graph=create_graph, retain_graph=True)[0][:, k]
        for k in range(y.shape[1])
    )
    return u, grad, laplacian


class PointPhysicsLoss(nn.Module):
    r"""The loss :math:`L` of the module docstring for a :class:`~oplearn.pdes.mesh_base.MeshPDE`.

    Parameters
    ----------
    pde : MeshPDE
        Gives the strong residual (families with a pointwise residual only).
    boundary_weight : float
        :math:`\lambda_b`.
    length : float
        :math:`\ell`, a length scale of the domains.
    """

    def __init__(self, pde: MeshPDE, boundary_weight: float = 1.0, length: float = 0.3) -> None:
        super().__init__()
        self.pde, self.boundary_weight, self.length = pde, float(boundary_weight), float(length)

    def forward(
        self, fn: QueryFunction, points: torch.Tensor, inputs: torch.Tensor, boundary: torch.Tensor
    ) -> torch.Tensor:
        """The loss at ``points``: the residual where ``boundary`` is false, the Dirichlet misfit
        where it is true. ``fn`` maps query points to the operator's output there (see
        :func:`query_derivatives`); it is called once, on all points.

        Shapes: ``points (Q, d)``, ``inputs (Q, c_in)``, ``boundary (Q,)`` bool ``-> ()``.
        """
        u, grad, laplacian = query_derivatives(fn, points)
        inside = ~boundary
        inputs = inputs.to(u)
        residual = self.pde.strong_residual(u[inside], grad[inside], laplacian[inside], inputs[inside])
        scale = inputs[inside, 0].square().mean().clamp(min=torch.finfo(u.dtype).tiny)
        misfit = u[boundary].square().mean() if boundary.any() else u.new_zeros(())
        return residual.square().mean() / scale + self.boundary_weight * misfit / (scale * self.length**4)
