r"""Piecewise-linear (P1) finite elements for divergence-form elliptic equations on meshes.

.. math::

    -\nabla \cdot \big(a(x)\, c(u) \nabla u\big) = f(x) \ \text{in } \Omega, \qquad
    u = g \ \text{on } \partial\Omega,

with a coefficient :math:`a > 0` and a conductivity :math:`c(u) > 0` (:math:`c = 1` for a
linear equation). The weak form, for all test functions :math:`v` vanishing on the
boundary,

.. math:: R(u)[v] = \int_\Omega a\, c(u) \nabla u \cdot \nabla v \, dx - \int_\Omega f v \, dx = 0,

is assembled by scikit-fem (extra ``fem``) with :math:`a`, :math:`f` and :math:`c(u)`
evaluated at the quadrature points of order ``intorder``, and solved by Newton's method,

.. math:: J(u)\,\delta = -R(u), \qquad
          J(u)[\delta, v] = \int a\, c(u) \nabla\delta \cdot \nabla v + a\, c'(u)\, \delta\, \nabla u \cdot \nabla v,

from the linear solve with :math:`c = 1`; a linear equation takes that one step.
:meth:`P1Problem.residual` evaluates the same discrete :math:`R(u)` in torch
(differentiable, batched), so ``residual(solve()) ~ 0`` checks one against the other.
P1 elements on quasi-uniform meshes are second-order accurate in :math:`L^2` for smooth
solutions (and first order in :math:`H^1`).

References
----------
Gustafsson and McBain, scikit-fem: A Python package for finite element assembly, JOSS 2020.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from oplearn.errors import DataError
from oplearn.extras import require
from oplearn.geometry.mesh import TriangleMesh

if TYPE_CHECKING:
    from skfem.assembly.form.form import FormExtraParams
    from skfem.element import DiscreteField

PointFunction = Callable[[torch.Tensor], torch.Tensor]  # points (P, 2) -> values (P,)


@dataclass(frozen=True)
class Conductivity:
    """:math:`c(u)` and :math:`c'(u)`, acting on numpy arrays and torch tensors alike."""

    value: Callable
    derivative: Callable


#: :math:`c(u) = 1 + u^2`, the nonlinear Poisson equation's conductivity.
QUADRATIC = Conductivity(lambda u: 1 + u * u, lambda u: 2 * u)


class P1Problem:
    r"""One equation of the module docstring on ``mesh``, discretised by P1 elements.

    Parameters
    ----------
    mesh : TriangleMesh
    source : callable
        :math:`f`, points ``(P, 2) -> (P,)`` (torch, float64).
    coefficient : callable or None
        :math:`a`, the same signature; ``None`` for :math:`a = 1`.
    boundary : callable or None
        :math:`g` at the boundary nodes, the same signature; ``None`` for :math:`g = 0`.
    conductivity : Conductivity or None
        :math:`c(u)`; ``None`` for :math:`c = 1` (a linear equation).
    intorder : int
        Order of the quadrature rule.
    """

    def __init__(
        self,
        mesh: TriangleMesh,
        source: PointFunction,
        coefficient: PointFunction | None = None,
        boundary: PointFunction | None = None,
        conductivity: Conductivity | None = None,
        intorder: int = 4,
    ) -> None:
        skfem = require("skfem", "fem")
        self.mesh, self.conductivity = mesh, conductivity
        self.basis = skfem.Basis(mesh.to_skfem(), skfem.ElementTriP1(), intorder=intorder)
        x = np.asarray(self.basis.global_coordinates())  # (2, T, Q)
        points = torch.from_numpy(x.reshape(2, -1).T.copy())

        def at_quadrature(fn: PointFunction | None) -> np.ndarray:
            return np.ones(x.shape[1:]) if fn is None else fn(points).detach().numpy().reshape(x.shape[1:])

        self.a, self.f = at_quadrature(coefficient), at_quadrature(source)
        self.dirichlet = mesh.boundary.numpy().nonzero()[0]
        nodes = mesh.nodes[mesh.boundary]
        self.g = np.zeros(len(nodes)) if boundary is None else boundary(nodes).detach().numpy()
        self.load = skfem.asm(skfem.LinearForm(lambda v, w: w.f * v), self.basis, f=self.f)

    def solve(self, tol: float = 1e-10, max_iter: int = 30) -> torch.Tensor:
        """The nodal values ``(N,)`` float64 (Newton until the update is below ``tol`` relative)."""
        skfem = require("skfem", "fem")
        from skfem.helpers import dot, grad

        def jacobian(du: DiscreteField, v: DiscreteField, w: FormExtraParams) -> DiscreteField:
            return w.a * w.c * dot(grad(du), grad(v)) + w.a * w.dc * du * dot(grad(w.u), grad(v))

        def residual(v: DiscreteField, w: FormExtraParams) -> DiscreteField:
            return w.a * w.c * dot(grad(w.u), grad(v)) - w.f * v

        u = np.zeros(self.basis.N)
        u[self.dirichlet] = self.g
        c = self.conductivity or Conductivity(np.ones_like, np.zeros_like)
        linear = skfem.BilinearForm(lambda du, v, w: w.a * dot(grad(du), grad(v)))
        for iteration in range(max_iter + 1):
            if iteration == 0:  # the linear solve (c = 1) as the first iterate
                matrix = skfem.asm(linear, self.basis, a=self.a)
                rhs = self.load - matrix @ u
            else:
                current = self.basis.interpolate(u)
                fields = dict(
                    a=self.a, f=self.f, c=c.value(np.asarray(current)), dc=c.derivative(np.asarray(current)), u=current
                )
                matrix = skfem.asm(skfem.BilinearForm(jacobian), self.basis, **fields)
                rhs = -skfem.asm(skfem.LinearForm(residual), self.basis, **fields)
            du = skfem.solve(*skfem.condense(matrix, rhs, D=self.dirichlet))
            u += du
            if self.conductivity is None:
                return torch.from_numpy(u)
            if iteration and np.abs(du).max() <= tol * (1 + np.abs(u).max()):
                return torch.from_numpy(u)
        raise DataError(
            f"Newton's method did not converge in {max_iter} iterations (last update {np.abs(du).max():.2e})"
        )

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        r"""The discrete weak residual :math:`R(u)[\varphi_i]` at the interior nodes (differentiable).

        Shapes: ``u (..., N) -> (..., N_interior)``.
        """
        basis = self.basis
        phi = torch.from_numpy(np.stack([np.asarray(b[0]) for b in basis.basis])).to(u)  # (3, T, Q)
        gradients = torch.from_numpy(np.stack([b[0].grad[:, :, 0] for b in basis.basis])).to(u)  # (3, 2, T)
        dx = torch.from_numpy(basis.dx).to(u)
        dofs = torch.from_numpy(basis.element_dofs.T.copy()).to(u.device)  # (T, 3), scikit-fem's local order
        local = u[..., dofs]  # (..., T, 3)
        u_q = torch.einsum("...ti,itq->...tq", local, phi)
        grad_u = torch.einsum("...ti,idt->...td", local, gradients)
        c = 1.0 if self.conductivity is None else self.conductivity.value(u_q)
        weight = (torch.from_numpy(self.a).to(u) * c * dx).sum(-1)  # (..., T): the integral of a c(u)
        element = weight[..., None] * torch.einsum("...td,idt->...ti", grad_u, gradients)  # (..., T, 3)
        full = torch.zeros((*u.shape[:-1], u.shape[-1]), dtype=u.dtype, device=u.device)
        full = full.index_add(-1, dofs.flatten(), element.flatten(-2))
        full = full - torch.from_numpy(self.load).to(u)
        return full[..., ~self.mesh.boundary]
