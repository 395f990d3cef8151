r"""Physics-informed (PINO) losses built on each PDE object's own discrete residual.

The loss of a predicted field never re-derives an equation: the interior term is
:meth:`PDE.residual <oplearn.pdes.base.PDE.residual>` (finite differences on bounded grids,
Fourier derivatives on periodic ones, exactly the discretisation of the reference solver),
the boundary term :meth:`~oplearn.pdes.base.PDE.boundary_residual` and the initial-condition
term :meth:`~oplearn.pdes.base.PDE.initial_residual`. Every term is a relative norm, so the
weights are scale-free (section *Terms* of :class:`PhysicsLoss`).

Finer resolution: operators are resolution-agnostic, so a model is best evaluated directly on
a finer grid rather than its prediction upsampled. That needs the input functions on the finer
grid. Every oplearn dataset records its PDE, seed and chunking, and every PDE draws the same
input functions from the same generator state at any resolution, so :func:`redraw_inputs`
draws a file's inputs again on a refined grid (for Darcy: the thresholded random field at the
finer nodes, sharper than any interpolation of the coarse coefficient). Extra unlabelled
inputs for the residual alone come from the PDE's input distribution
(:meth:`PDE.sample_input <oplearn.pdes.base.PDE.sample_input>`).

Training (``train.physics`` in a run config, :class:`PhysicsConfig`) adds this loss to the
``map`` task (:mod:`oplearn.training.tasks`).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn

from oplearn.data.generate import make_pde
from oplearn.errors import DataError
from oplearn.grids import Grid
from oplearn.pdes.base import PDE
from oplearn.schema import Strict
from oplearn.seeding import generator

#: Keys of the random stream of the extra physics inputs under the run seed: distinct from a
#: dataset's chunk streams ``(seed, chunk)`` and the epoch shuffles ``(seed, 1, epoch)``.
EXTRA_INPUT_STREAM = (2, 1)


class PhysicsConfig(Strict):
    """``train.physics``: a physics-informed term in the loss of the ``map`` task.

    Per training item the loss is ``data_weight * data_loss`` (labelled items only) plus
    ``weight * interior + boundary_weight * boundary + initial_weight * initial``
    (:class:`PhysicsLoss`), averaged over the batch.

    Attributes
    ----------
    weight : float
        Weight of the interior PDE residual.
    boundary_weight : float
        Weight of the boundary-condition misfit (Dirichlet problems).
    initial_weight : float
        Weight of the initial-condition misfit (trajectories stored from ``t = 0``).
    data_weight : float
        Weight of the data loss (``train.loss``). ``0`` trains without solver data: the
        outputs of the training file are never read, and the output normaliser is the
        identity scaled by ``output_scale``.
    output_scale : float
        Standard deviation of the output normaliser when ``data_weight = 0`` (mean 0), the
        expected size of the solution (Darcy with ``f = 1``: about 0.03). With data it is
        fitted on the outputs and this is unused.
    refine : int
        The residual is evaluated by calling the model on the ``refine``-times finer grid
        (:meth:`oplearn.grids.Grid.refine`), with the training inputs redrawn there
        (:func:`redraw_inputs`); ``1``: the data grid.
    extra_inputs : int
        Further inputs drawn from the PDE's input distribution (seeded by the run seed), used
        for the residual only: the training items are the labelled samples then these.
    """

    weight: float = Field(default=1.0, ge=0)
    boundary_weight: float = Field(default=1.0, ge=0)
    initial_weight: float = Field(default=1.0, ge=0)
    data_weight: float = Field(default=1.0, ge=0)
    output_scale: float = Field(default=1.0, gt=0)
    refine: int = Field(default=1, ge=1)
    extra_inputs: int = Field(default=0, ge=0)


def pde_from_meta(meta: dict[str, Any]) -> tuple[PDE, Grid]:
    """The PDE and grid recorded in a dataset file's metadata (:func:`oplearn.data.files.read_meta`)."""
    if "pde" not in meta or "pde_params" not in meta:
        raise DataError("the dataset records no PDE (pde, pde_params); physics losses need an oplearn-generated file")
    pde = make_pde(meta["pde"], meta["pde_params"])
    grid = Grid.from_dict(meta["grid"])
    if grid.periodic != pde.periodic or grid.ndim != pde.ndim:
        raise DataError(f"the dataset's grid {grid.shape} (periodic={grid.periodic}) does not fit the PDE '{pde.name}'")
    return pde, grid


def redraw_inputs(meta: dict[str, Any], grid: Grid, count: int) -> torch.Tensor:
    """The inputs of a dataset's first ``count`` samples, drawn again on ``grid`` (float64).

    Generation draws chunk ``c`` of ``meta["chunk_size"]`` samples from the stream
    ``(seed, c)`` (:mod:`oplearn.data.generate`), and a PDE draws the same input functions
    from the same stream at any resolution, so on a refinement of the data grid the result
    holds the stored inputs at every ``refine``-th node.

    Shapes: ``-> (count, channels, *grid.shape)``.
    """
    if "shard_index" in meta:
        raise DataError("inputs are redrawn from a whole dataset, not one shard file; use the assembled file")
    pde, _ = pde_from_meta(meta)
    seed, chunk, n = int(meta["seed"]), int(meta["chunk_size"]), int(meta["n"])
    if count > n:
        raise DataError(f"asked to redraw {count} inputs of a dataset of {n} samples")
    parts = []
    for c in range(-(-count // chunk)):
        size = min(n, (c + 1) * chunk) - c * chunk
        parts.append(pde.sample_input(size, grid, generator(seed, c)))
    return torch.cat(parts)[:count] if parts else torch.zeros((0, len(pde.input_names), *grid.shape), dtype=torch.float64)


def extra_inputs(pde: PDE, count: int, grid: Grid, seed: int) -> torch.Tensor:
    """``count`` inputs drawn from ``pde``'s distribution on ``grid`` for the run ``seed`` (float64).

    Shapes: ``-> (count, channels, *grid.shape)``.
    """
    return pde.sample_input(count, grid, generator(seed, *EXTRA_INPUT_STREAM))


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean norms: ``(batch, ...) -> (batch,)``."""
    return t.flatten(1).norm(dim=1)


class PhysicsLoss(nn.Module):
    r"""Physics-informed loss of predicted fields on one grid, from the PDE's own residuals.

    Terms
    -----
    Each term is a per-sample relative norm (sums over all points and channels):

    * ``interior``: :math:`\lVert R(u) \rVert / \lVert R(u_{\mathrm{ref}}) \rVert` with
      :math:`R` = :meth:`PDE.residual <oplearn.pdes.base.PDE.residual>` and
      :math:`u_{\mathrm{ref}}` the trivial prediction that ignores the equation: zero for a
      steady PDE (so the scale is the source, :math:`\lVert f \rVert` for Darcy and
      Poisson), the initial condition frozen in time for an evolution PDE (so the scale is
      :math:`\lVert \partial_t u \rVert` at :math:`t = 0` from the right-hand side). It does
      not depend on the resolution or the frame spacing for a fixed prediction quality.
    * ``boundary`` (when :meth:`~oplearn.pdes.base.PDE.boundary_residual` is not ``None``):
      the root-mean-square boundary misfit divided by the root-mean-square of the prediction
      over the whole grid, the latter held constant (detached) so that shrinking the
      prediction is not rewarded.
    * ``initial`` (when :meth:`~oplearn.pdes.base.PDE.initial_residual` is not ``None``):
      :math:`\lVert u(t_0) - u_0 \rVert / \lVert u_0 \rVert`.

    The loss of a sample is ``weight * interior + boundary_weight * boundary +
    initial_weight * initial``; :meth:`forward` averages it over the batch.

    Parameters
    ----------
    pde : PDE
        The equation (e.g. :func:`pde_from_meta` of the training file).
    grid : Grid
        The grid of the fields passed in.
    weight, boundary_weight, initial_weight : float
        The weights of the terms.

    Shapes
    ------
    ``outputs (batch, *pde.output_shape(grid))`` or with time folded into channels
    ``(batch, len(times) * channels, *grid.shape)``; ``inputs (batch, len(pde.input_names),
    *grid.shape)``. Both are computed in the dtype of ``outputs``.
    """

    def __init__(self, pde: PDE, grid: Grid, weight: float = 1.0, boundary_weight: float = 1.0, initial_weight: float = 1.0):
        super().__init__()
        if grid.periodic != pde.periodic or grid.ndim != pde.ndim:
            raise ValueError(f"PDE '{pde.name}' needs a {'periodic' if pde.periodic else 'bounded'} {pde.ndim}D grid, got {grid}")
        self.pde, self.grid = pde, grid
        self.weights = {"interior": float(weight), "boundary": float(boundary_weight), "initial": float(initial_weight)}

    def _unfold(self, outputs: torch.Tensor) -> torch.Tensor:
        shape = self.pde.output_shape(self.grid)
        if outputs.ndim < 2 or outputs[0].numel() != torch.Size(shape).numel() or tuple(outputs.shape[-self.grid.ndim:]) != self.grid.shape:
            raise ValueError(f"{self.pde.name} outputs must have shape (batch, *{shape}) (time may be folded into channels), got {tuple(outputs.shape)}")
        return outputs.reshape(len(outputs), *shape)

    def terms(self, outputs: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms that apply to this PDE, each per sample ``(batch,)``."""
        u = self._unfold(outputs)
        inputs = inputs.to(u)
        pde, grid = self.pde, self.grid
        with torch.no_grad():
            reference = torch.zeros_like(u) if pde.times is None else inputs.unsqueeze(1).expand_as(u)
            scale = _norms(pde.residual(reference, inputs, grid))
        terms = {"interior": _norms(pde.residual(u, inputs, grid)) / scale.clamp_min(torch.finfo(scale.dtype).tiny)}
        boundary = pde.boundary_residual(u, inputs, grid)
        if boundary is not None:
            size = (boundary[0].numel() / u[0].numel()) ** 0.5
            terms["boundary"] = _norms(boundary) / (size * _norms(u.detach())).clamp_min(torch.finfo(u.dtype).tiny)
        initial = pde.initial_residual(u, inputs, grid)
        if initial is not None:
            terms["initial"] = _norms(initial) / _norms(inputs).clamp_min(torch.finfo(u.dtype).tiny)
        return terms

    def per_sample(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the terms per sample: ``(batch,)``."""
        return sum(self.weights[name] * value for name, value in self.terms(outputs, inputs).items())

    def forward(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The batch mean of :meth:`per_sample`: a scalar."""
        return self.per_sample(outputs, inputs).mean()
