"""The PDE interface shared by data generation, physics losses and inverse problems.

A PDE object owns everything about one equation family: the distribution of its inputs,
a verified reference solver, the discrete residual, and the metadata that makes a dataset
reproducible. Each equation is written once and used everywhere.
"""

from __future__ import annotations

import abc
import inspect
import typing
from typing import Any, ClassVar

import torch

from oplearn.grids import Grid, boundary_values, subsample


class PDE(abc.ABC):
    """A family of PDE problems mapping an input field to a solution field.

    Subclasses set :attr:`name`, :attr:`input_names`, :attr:`output_names` and
    :attr:`periodic`, and implement :meth:`sample_input`, :meth:`solve`,
    :meth:`residual` and :meth:`params`.

    Shapes
    ------
    inputs : ``(batch, len(input_names), *grid.shape)``
    outputs : ``(batch, len(output_names), *grid.shape)`` (time-dependent PDEs add a time
    axis after the batch axis: ``(batch, time, channels, *grid.shape)``)
    """

    name: ClassVar[str]
    input_names: ClassVar[tuple[str, ...]]
    output_names: ClassVar[tuple[str, ...]]
    periodic: ClassVar[bool]
    ndim: ClassVar[int]

    #: Whether the solution vanishes on the boundary of its (bounded) grid: zero Dirichlet
    #: data, checked by :meth:`boundary_residual`.
    zero_dirichlet: ClassVar[bool] = False

    #: Whether the reference solver's discrete operator is linear in the solution and symmetric,
    #: and ``solve`` takes a ``forcing``: the adjoint solve is then ``solve`` itself, which makes the
    #: solver differentiable (:class:`oplearn.inverse.solver_operator.SolverOperator`).
    self_adjoint: ClassVar[bool] = False

    #: Output times of a time-dependent PDE (1D tensor), ``None`` for a steady one.
    times: torch.Tensor | None = None

    #: Refinement factor of the reference solve: solve on ``grid.refine(refine)`` and
    #: subsample. Subclasses take it as a constructor argument.
    refine: int = 1

    def grid(self, resolution: int) -> Grid:
        """The unit-box grid with ``resolution`` nodes per dimension."""
        return Grid((resolution,) * self.ndim, periodic=self.periodic)

    def output_shape(self, grid: Grid) -> tuple[int, ...]:
        """Shape of one sample's output: ``(channels, *grid.shape)``, with a leading time
        axis ``(len(times), channels, *grid.shape)`` for time-dependent PDEs."""
        steady = (len(self.output_names), *grid.shape)
        return steady if self.times is None else (len(self.times), *steady)

    @abc.abstractmethod
    def sample_input(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` inputs from the standard distribution, evaluated on ``grid``.

        The same generator state gives the same underlying functions at every resolution.
        Returns ``(n, len(input_names), *grid.shape)``, float64.
        """

    @abc.abstractmethod
    def solve(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Reference solution of the PDE for each input, on the same grid.

        ``inputs``: ``(batch, len(input_names), *grid.shape)`` ->
        ``(batch, len(output_names), *grid.shape)``.
        """

    @abc.abstractmethod
    def residual(self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Discrete PDE residual of ``outputs`` given ``inputs`` (differentiable, torch).

        Zero (to solver tolerance) for ``outputs = solve(inputs)``. The shape is documented
        by each PDE (interior points for Dirichlet problems).
        """

    def boundary_residual(self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid) -> torch.Tensor | None:
        """Misfit of ``outputs`` to the boundary conditions at the boundary nodes (differentiable).

        With :attr:`zero_dirichlet`, the outputs at the boundary nodes
        (:func:`oplearn.grids.boundary_values`). ``None`` when :meth:`residual` imposes the
        boundary conditions itself (periodic grids, no-flux finite volumes).

        Shapes: ``outputs (batch, channels, *grid.shape) -> (batch, channels, n_boundary)``.
        """
        return boundary_values(outputs, grid) if self.zero_dirichlet else None

    def initial_residual(self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid) -> torch.Tensor | None:
        """Misfit of the first stored frame to the initial condition ``inputs`` (differentiable).

        Only for trajectories stored from ``t = 0`` (first frame = initial condition).
        ``None`` for steady PDEs and for trajectories stored from ``t > 0``, whose
        :meth:`residual` takes ``inputs`` as the frame at ``t = 0``.

        Shapes: ``outputs (batch, len(times), channels, *grid.shape)``, ``inputs (batch,
        channels, *grid.shape) -> (batch, channels, *grid.shape)``.
        """
        if self.times is None or float(self.times[0]) > 0:
            return None
        return outputs[:, 0] - inputs.to(outputs)

    @classmethod
    def parameters(cls) -> dict[str, tuple[Any, Any]]:
        """The constructor's parameters: ``name -> (type, default)`` (what ``--param`` sets and
        ``oplearn list pdes`` shows)."""
        return constructor_parameters(cls)

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters that, with the seed, reproduce a dataset."""

    def generate(
        self, n: int, resolution: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample inputs and solve them, on a ``refine``-times finer grid, then subsample.

        Returns ``(inputs, outputs)`` on ``self.grid(resolution)``.
        """
        fine = self.grid(resolution).refine(self.refine)
        inputs = self.sample_input(n, fine, generator)
        outputs = self.solve(inputs, fine)
        return subsample(inputs, self.refine, self.ndim), subsample(outputs, self.refine, self.ndim)


def constructor_parameters(cls: type) -> dict[str, tuple[Any, Any]]:
    """The keyword parameters of ``cls.__init__``: ``name -> (type, default)``."""
    hints = typing.get_type_hints(cls.__init__)
    return {
        name: (hints.get(name, Any), p.default)
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
    }
