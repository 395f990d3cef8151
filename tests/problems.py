"""Problems with exact solutions, shared by the tests of solvers and PDEs.

Each elliptic problem gives a closed-form solution ``u`` vanishing on the boundary of its
box, a smooth positive coefficient ``a`` and a reaction constant ``c``; the right-hand side
``f = -div(a grad u) + c u`` is obtained by differentiating the closed forms exactly with
autograd, so no hand-derived formula can be wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from oplearn.grids import Grid

Field = Callable[[torch.Tensor], torch.Tensor]  # coordinates (ndim, *shape) -> (*shape)


@dataclass(frozen=True)
class EllipticProblem:
    """``-div(a grad u) + c u = f`` in a box with ``u = 0`` on its boundary."""

    name: str
    domain: tuple[tuple[float, float], ...]
    solution: Field
    coefficient: Field
    reaction: float = 0.0

    @property
    def ndim(self) -> int:
        return len(self.domain)

    def grid(self, n: int) -> Grid:
        return Grid((n,) * self.ndim, self.domain)

    def fields(self, grid: Grid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, f, u)`` at the nodes of ``grid``, each ``(*grid.shape)``, float64."""
        x = grid.coordinates(torch.float64).requires_grad_(True)
        u = self.solution(x)
        a = self.coefficient(x)
        (grad_u,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        divergence = sum(
            torch.autograd.grad((a * grad_u[d]).sum(), x, retain_graph=True)[0][d] for d in range(self.ndim)
        )
        f = -divergence + self.reaction * u
        return a.detach(), f.detach(), u.detach()


def _bump(x: torch.Tensor, domain) -> torch.Tensor:
    """prod_i sin(pi (x_i - lo_i) / L_i): zero on the boundary of the box."""
    return math.prod(torch.sin(math.pi * (x[i] - lo) / (hi - lo)) for i, (lo, hi) in enumerate(domain))


UNIT_SQUARE = ((0.0, 1.0), (0.0, 1.0))
RECTANGLE = ((0.0, 2.0), (-0.5, 0.5))

ELLIPTIC_PROBLEMS = [
    EllipticProblem(
        "variable-2d",
        UNIT_SQUARE,
        solution=lambda x: _bump(x, UNIT_SQUARE) * torch.exp(x[0] - 0.5 * x[1]),
        coefficient=lambda x: 1 + 0.5 * torch.sin(2 * math.pi * x[0]) * torch.cos(3 * math.pi * x[1]),
    ),
    EllipticProblem(
        "rectangle-2d",
        RECTANGLE,
        solution=lambda x: _bump(x, RECTANGLE) * (1 + x[0] * x[1]),
        coefficient=lambda x: torch.exp(0.3 * x[0] + 0.2 * x[1]) * (1 + 0.25 * torch.sin(math.pi * x[0] * x[1])),
    ),
    EllipticProblem(
        "helmholtz-2d",
        UNIT_SQUARE,
        solution=lambda x: torch.sin(math.pi * x[0]) * torch.sin(2 * math.pi * x[1]) * (1 + x[0] * x[1]),
        coefficient=lambda x: torch.ones_like(x[0]),
        reaction=-10.0,
    ),
    EllipticProblem(
        "reaction-1d",
        ((0.0, 1.0),),
        solution=lambda x: torch.sin(math.pi * x[0]) * (x[0] + 1),
        coefficient=lambda x: 2 + torch.cos(3 * x[0]),
        reaction=1.0,
    ),
    EllipticProblem(
        "variable-3d",
        ((0.0, 1.0),) * 3,
        solution=lambda x: _bump(x, ((0.0, 1.0),) * 3),
        coefficient=lambda x: 1 + 0.5 * x[0] * x[1] * x[2],
    ),
]

PROBLEMS_BY_NAME = {p.name: p for p in ELLIPTIC_PROBLEMS}


def observed_order(spacings, errors) -> float:
    """Least-squares slope of log(error) against log(h)."""
    h = torch.log(torch.tensor(spacings, dtype=torch.float64))
    e = torch.log(torch.tensor(errors, dtype=torch.float64))
    h = h - h.mean()
    return float((h * (e - e.mean())).sum() / (h * h).sum())


# Appended for the Poisson / Helmholtz tests: a constant coefficient and no reaction.
ELLIPTIC_PROBLEMS.append(
    EllipticProblem(
        "poisson-2d",
        UNIT_SQUARE,
        solution=lambda x: _bump(x, UNIT_SQUARE) * torch.exp(x[0] - 0.5 * x[1]) * (1 + x[1] ** 2),
        coefficient=lambda x: torch.ones_like(x[0]),
    )
)
PROBLEMS_BY_NAME["poisson-2d"] = ELLIPTIC_PROBLEMS[-1]


# Appended for the diffusion-reaction tests: a time-dependent pair with zero normal derivative.
SQUARE = ((-1.0, 1.0), (-1.0, 1.0))
TimeFunction = Callable[[torch.Tensor], torch.Tensor]  # t (0-dim) -> 0-dim


@dataclass(frozen=True)
class ReactionDiffusionProblem:
    """``y_t = D Lap y + R(y) + s`` with zero normal derivative, for a closed-form ``y = (u, v)``.

    ``y`` is a sum of separable terms ``(species, a(t), phi(x))``; every ``phi`` has zero normal
    derivative on the box. The source ``s`` comes from differentiating the closed forms with
    autograd (once per grid for the spatial parts), either with the exact Laplacian
    (:meth:`source`: the discrete solution then converges to ``y`` as the grid is refined) or
    with the PDE's own discrete diffusion (:meth:`discrete_source`: ``y`` at the cell centres
    is then an exact solution of the semi-discrete system, so only the time integrator errs).
    """

    name: str
    domain: tuple[tuple[float, float], ...]
    terms: tuple[tuple[int, TimeFunction, Field], ...]

    def _spatial(self, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
        """Each term's ``phi`` and exact ``Lap phi`` at the nodes, ``(terms, *grid.shape)`` each."""
        x = grid.coordinates(torch.float64).requires_grad_(True)
        phis, laplacians = [], []
        for _, _, phi in self.terms:
            value = phi(x)
            (grad,) = torch.autograd.grad(value.sum(), x, create_graph=True)
            laplacians.append(
                sum(torch.autograd.grad(grad[d].sum(), x, retain_graph=True)[0][d] for d in range(grid.ndim))
            )
            phis.append(value)
        return torch.stack(phis).detach(), torch.stack(laplacians).detach()

    def _combine(self, weights: list[torch.Tensor], parts: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((2, *parts.shape[1:]), dtype=torch.float64)
        for (species, _, _), w, part in zip(self.terms, weights, parts):
            out[species] += w * part
        return out

    def _time_parts(self, t: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each term's ``a(t)`` and ``a'(t)``."""
        values, rates = [], []
        for _, a, _ in self.terms:
            time = torch.tensor(float(t), dtype=torch.float64, requires_grad=True)
            value = a(time) * torch.ones((), dtype=torch.float64)
            (rate,) = torch.autograd.grad(value, time, allow_unused=True)
            values.append(value.detach())
            rates.append(torch.zeros((), dtype=torch.float64) if rate is None else rate)
        return values, rates

    def values(self, grid: Grid, t: float) -> torch.Tensor:
        """``y`` at the nodes of ``grid``: ``(1, 2, *grid.shape)``, float64."""
        phis, _ = self._spatial(grid)
        return self._combine(self._time_parts(t)[0], phis)[None]

    def source(self, pde, grid: Grid) -> Callable[[float], torch.Tensor]:
        """``s(t) = y_t - D Lap y - R(y)`` with the exact Laplacian, ``(1, 2, *grid.shape)``."""
        phis, laplacians = self._spatial(grid)
        diffusivity = torch.tensor([pde.du, pde.dv], dtype=torch.float64).reshape(2, 1, 1)

        def s(t: float) -> torch.Tensor:
            a, a_t = self._time_parts(t)
            y = self._combine(a, phis)
            return (self._combine(a_t, phis) - diffusivity * self._combine(a, laplacians) - pde.reaction(y))[None]

        return s

    def discrete_source(self, pde, grid: Grid) -> Callable[[float], torch.Tensor]:
        """``s(t) = y_t - pde.rate(y)`` at the nodes, ``(1, 2, *grid.shape)``."""
        phis, _ = self._spatial(grid)

        def s(t: float) -> torch.Tensor:
            a, a_t = self._time_parts(t)
            return (self._combine(a_t, phis) - pde.rate(self._combine(a, phis), grid))[None]

        return s


REACTION_DIFFUSION_PROBLEMS = [
    ReactionDiffusionProblem(
        "fitzhugh-nagumo-smooth",
        SQUARE,
        terms=(
            (0, lambda t: torch.exp(-t / 2), lambda x: torch.cos(math.pi * x[0]) * torch.cos(math.pi * x[1])),
            (0, lambda t: 0.2 * t, lambda x: (x[0] ** 2 - 1) ** 2),
            (1, lambda t: 0.5 * torch.cos(t), lambda x: torch.cos(2 * math.pi * x[1])),
            (1, lambda t: 0.3 + 0 * t, lambda x: (x[1] ** 2 - 1) ** 2 * torch.cos(math.pi * x[0])),
        ),
    )
]
