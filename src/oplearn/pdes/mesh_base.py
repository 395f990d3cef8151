r"""The interface of PDE families on random irregular domains, solved by finite elements.

A :class:`MeshPDE` is the counterpart of :class:`oplearn.pdes.base.PDE` for data that live
on meshes rather than on a grid: every sample has its own domain (drawn from a
:class:`~oplearn.geometry.families.DomainFamily`), its own mesh and its own number of
nodes. All families here are divergence-form equations

.. math:: -\nabla \cdot \big(a(x)\, c(u) \nabla u\big) = f(x) \ \text{in } \Omega, \qquad u = 0 \ \text{on } \partial\Omega,

solved by P1 finite elements (:class:`oplearn.solvers.fem.P1Problem`); a family says
which of :math:`a`, :math:`f` is random and what :math:`c` is. Input functions are defined on
the whole unit square, so they can be evaluated at the nodes of any mesh, at quadrature
points and on a grid (for grid baselines).

Resolution: ``generate(n, resolution, ...)`` meshes with element size
:math:`h = 1 / (\text{resolution} - 1)`, the node spacing of a ``resolution``-node grid of the
unit square, so "2x finer" means the same as for grid data.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from oplearn.errors import DataError
from oplearn.geometry.families import DomainFamily
from oplearn.geometry.mesh import MeshSample, TriangleMesh, mesh_domain
from oplearn.pdes.base import constructor_parameters
from oplearn.solvers.fem import Conductivity, P1Problem
from oplearn.wos.domains import Domain

PointFunction = Callable[[torch.Tensor], torch.Tensor]  # points (P, 2) -> values (P,)

#: The box containing every domain.
SQUARE = ((0.0, 1.0), (0.0, 1.0))


@dataclass(frozen=True)
class DomainProblem:
    """One problem of a family: its domain and the functions of the equation.

    ``source`` is :math:`f`, ``coefficient`` is :math:`a` (``None``: 1); ``inputs`` maps
    points ``(P, 2)`` to the input channels ``(P, c_in)`` that an operator sees.
    """

    domain: Domain
    source: PointFunction
    coefficient: PointFunction | None
    inputs: Callable[[torch.Tensor], torch.Tensor]


class MeshPDE(abc.ABC):
    """A family of divergence-form problems on random domains (see the module docstring).

    Subclasses set :attr:`name`, :attr:`input_names`, :attr:`conductivity` and implement
    :meth:`sample_problem` and :meth:`params`.
    """

    name: ClassVar[str]
    input_names: ClassVar[tuple[str, ...]]
    output_names: ClassVar[tuple[str, ...]] = ("u",)
    #: :math:`c(u)`, ``None`` for a linear equation.
    conductivity: ClassVar[Conductivity | None] = None
    #: How :mod:`oplearn.data.generate` stores the samples (ragged node arrays).
    layout: ClassVar[str] = "mesh"
    ndim: ClassVar[int] = 2
    periodic: ClassVar[bool] = False
    #: Steady problems (no time axis), as :attr:`oplearn.pdes.base.PDE.times` says for grid PDEs.
    times: ClassVar[None] = None
    zero_dirichlet: ClassVar[bool] = True
    #: Whether :meth:`strong_residual` is defined (smooth coefficients).
    pointwise_residual: ClassVar[bool] = True

    @classmethod
    def parameters(cls) -> dict[str, tuple[Any, Any]]:
        """The constructor's parameters: ``name -> (type, default)`` (``--param``, ``oplearn list pdes``)."""
        return constructor_parameters(cls)

    def __init__(self, family: DomainFamily | dict | None = None) -> None:
        self.family = DomainFamily.model_validate(family or {})

    @abc.abstractmethod
    def sample_problem(self, generator: torch.Generator | None = None) -> DomainProblem:
        """Draw one problem (domain, then its random functions); reproducible from the generator."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters that, with the seed, reproduce a dataset."""

    @staticmethod
    def mesh_size(resolution: int) -> float:
        """The element size :math:`h = 1 / (\\text{resolution} - 1)` of ``resolution``."""
        if int(resolution) != resolution or resolution < 3:
            raise DataError(f"--resolution must be an integer >= 3 for a mesh PDE, got {resolution}")
        return 1.0 / (resolution - 1)

    def discretise(self, problem: DomainProblem, mesh: TriangleMesh) -> P1Problem:
        """The P1 discretisation of ``problem`` on ``mesh``."""
        return P1Problem(mesh, problem.source, problem.coefficient, conductivity=self.conductivity)

    def solve(self, problem: DomainProblem, mesh: TriangleMesh) -> torch.Tensor:
        """The finite-element solution at the nodes: ``-> (N, 1)`` float64."""
        return self.discretise(problem, mesh).solve().unsqueeze(1)

    def residual(self, outputs: torch.Tensor, problem: DomainProblem, mesh: TriangleMesh) -> torch.Tensor:
        """The discrete weak residual at the interior nodes (differentiable; zero at :meth:`solve`).

        Shapes: ``outputs (N, 1) -> (N_interior,)``.
        """
        return self.discretise(problem, mesh).residual(outputs[:, 0])

    def strong_residual(
        self, u: torch.Tensor, grad_u: torch.Tensor, laplacian_u: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        r"""The pointwise residual :math:`-c(u)\Delta u - c'(u)|\nabla u|^2 - f` of a smooth
        :math:`u` at points (families with :math:`a = 1` whose input channel 0 is :math:`f`).

        Shapes: ``u, laplacian_u (P,)``, ``grad_u (P, 2)``, ``inputs (P, c_in) -> (P,)``.
        """
        c = self.conductivity
        value, slope = (1.0, 0.0) if c is None else (c.value(u), c.derivative(u))
        return -value * laplacian_u - slope * grad_u.square().sum(-1) - inputs[:, 0]

    def generate(self, n: int, resolution: int, generator: torch.Generator | None = None) -> list[MeshSample]:
        """Draw ``n`` problems, mesh each with :meth:`mesh_size` and solve it."""
        h = self.mesh_size(resolution)
        samples = []
        for _ in range(int(n)):
            problem = self.sample_problem(generator)
            mesh = mesh_domain(problem.domain, h)
            samples.append(
                MeshSample(mesh.nodes, problem.inputs(mesh.nodes), self.solve(problem, mesh), mesh.triangles)
            )
        return samples
