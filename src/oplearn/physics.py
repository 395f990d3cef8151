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

What the loss converges to: on the data grid the residual is the reference solver's scheme,
so it vanishes at the stored solution (to the float32 round-off of the file). On a finer grid
it vanishes at that grid's discrete solution; for smooth data the two agree to the scheme's
order, but for a discontinuous coefficient (thresholded Darcy) the residual of the exact
solution does not converge in the mean-square norm (its gradient has kinks at the jumps), so
``refine > 1`` changes the target there rather than sharpening it.

Training (``train.physics`` in a run config, :class:`PhysicsConfig`) adds this loss to the
``map`` task (:mod:`oplearn.training.tasks`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from oplearn.data.generate import make_pde
from oplearn.data.source import FieldSource
from oplearn.errors import DataError
from oplearn.grids import Grid, subsample
from oplearn.pdes.base import PDE
from oplearn.schema import Strict
from oplearn.seeding import generator

#: The keys of the random stream of the extra physics inputs under the run seed, distinct from a
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
        outputs of the training file never enter the loss or the normalisers (the output
        normaliser has mean 0 and std ``output_scale``); validation still scores them.
    output_scale : float
        Standard deviation of the output normaliser when ``data_weight = 0`` (mean 0), the
        expected size of the solution (Darcy with ``f = 1``: about 0.02). With data it is
        fitted on the outputs and this is unused. The boundary term is measured in units of
        the output normaliser's standard deviation.
    precondition : bool
        Measure the interior residual after the inverse Laplacian (:class:`PhysicsLoss`).
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
    precondition: bool = False
    refine: int = Field(default=1, ge=1)
    extra_inputs: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _something_to_train(self) -> PhysicsConfig:
        if self.weight == 0 and self.data_weight == 0:
            raise ValueError("train.physics.weight and train.physics.data_weight are both 0: nothing to train")
        return self


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
    return (
        torch.cat(parts)[:count] if parts else torch.zeros((0, len(pde.input_names), *grid.shape), dtype=torch.float64)
    )


def extra_inputs(pde: PDE, count: int, grid: Grid, seed: int) -> torch.Tensor:
    """``count`` inputs drawn from ``pde``'s distribution on ``grid`` for the run ``seed`` (float64).

    Shapes: ``-> (count, channels, *grid.shape)``.
    """
    return pde.sample_input(count, grid, generator(seed, *EXTRA_INPUT_STREAM))


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean norms: ``(batch, ...) -> (batch,)``."""
    return t.flatten(1).norm(dim=1)


def _sine_basis(m: int, dtype: torch.dtype, device: torch.device | str | None) -> torch.Tensor:
    """The orthonormal, symmetric DST-I matrix of size ``m``: ``S[j, k] = sqrt(2/(m+1)) sin(pi j k / (m+1))``."""
    j = torch.arange(1, m + 1, dtype=torch.float64, device=device)
    return (torch.sin(torch.pi * j[:, None] * j[None, :] / (m + 1)) * (2 / (m + 1)) ** 0.5).to(dtype)


def inverse_laplacian(r: torch.Tensor, grid: Grid) -> torch.Tensor:
    r"""Apply :math:`(-\Delta_h)^{-1}` to a field, the smoothing that turns a residual norm into an error norm.

    Bounded grids: ``r`` lives on the interior nodes and :math:`\Delta_h` is the
    ``2 d + 1``-point Laplacian with zero Dirichlet data, diagonalised exactly by the sine
    transform (eigenvalues :math:`\sum_d (4 / h_d^2) \sin^2(\pi k_d / (2 (n_d - 1)))`).
    Periodic grids: the Fourier symbol :math:`|k|^2`, with the zero mode divided by the
    smallest non-zero :math:`|k|^2` instead (kept, not removed).

    Shapes: bounded ``(..., n_1 - 2, ..., n_d - 2)``, periodic ``(..., *grid.shape)`` -> the same.
    """
    d = grid.ndim
    if grid.periodic:
        if tuple(r.shape[r.ndim - d :]) != grid.shape:
            raise ValueError(f"field of shape {tuple(r.shape)} does not end with the grid shape {grid.shape}")
        dims = tuple(range(r.ndim - d, r.ndim))
        k2 = sum(k**2 for k in torch.meshgrid(*grid.wavenumbers(r.device), indexing="ij"))
        k2[(0,) * d] = min((2 * torch.pi / length) ** 2 for length in grid.lengths)
        return torch.fft.ifftn(torch.fft.fftn(r, dim=dims) / k2, dim=dims).real.to(r.dtype)
    interior = tuple(n - 2 for n in grid.shape)
    if tuple(r.shape[r.ndim - d :]) != interior:
        raise ValueError(
            f"field of shape {tuple(r.shape)} does not end with the interior shape {interior} of {grid.shape}"
        )
    bases = [_sine_basis(m, r.dtype, r.device) for m in interior]

    def transform(x: torch.Tensor) -> torch.Tensor:
        for axis, basis in enumerate(bases):
            x = torch.movedim(torch.movedim(x, x.ndim - d + axis, -1) @ basis, -1, x.ndim - d + axis)
        return x

    eigenvalues = 0
    for axis, (m, h) in enumerate(zip(interior, grid.spacing)):
        k = torch.arange(1, m + 1, dtype=torch.float64, device=r.device)
        shape = [1] * d
        shape[axis] = m
        eigenvalues = eigenvalues + ((4 / h**2) * torch.sin(torch.pi * k / (2 * (m + 1))) ** 2).reshape(shape)
    return transform(transform(r) / eigenvalues.to(r.dtype))


class PhysicsLoss(nn.Module):
    r"""Physics-informed loss of predicted fields on one grid, from the PDE's own residuals.

    Terms
    -----
    Each term is a per-sample relative norm (sums over all points and channels):

    * ``interior``: :math:`\lVert P R(u) \rVert / \lVert P R(u_{\mathrm{ref}}) \rVert` with
      :math:`R` = :meth:`PDE.residual <oplearn.pdes.base.PDE.residual>` and
      :math:`u_{\mathrm{ref}}` the trivial prediction that ignores the equation: zero for a
      steady PDE (so the scale is the source, :math:`\lVert f \rVert` for Darcy and
      Poisson), the initial condition frozen in time for an evolution PDE (so the scale is
      :math:`\lVert \partial_t u \rVert` at :math:`t = 0` from the right-hand side). It does
      not depend on the resolution or the frame spacing for a fixed prediction quality.
      :math:`P` is the identity, or with ``precondition`` the inverse Laplacian
      (:func:`inverse_laplacian`) over the spatial axes: the residual is then measured in a
      norm two derivatives weaker, in which it is comparable to the error of ``u`` (for
      Poisson's equation with exact boundary values it *is* the relative error at the
      interior nodes). The plain residual norm weights an error at wavenumber :math:`k` by
      :math:`k^2`, so gradient descent on it corrects the smooth part of the solution, which
      carries most of its norm, slowly.
    * ``boundary`` (when :meth:`~oplearn.pdes.base.PDE.boundary_residual` is not ``None``):
      the root-mean-square boundary misfit divided by ``solution_scale``, the typical size of
      the solution.
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
    solution_scale : float
        The unit of the boundary term (training passes the output normaliser's standard
        deviation).
    precondition : bool
        Measure the interior residual after :func:`inverse_laplacian`.

    Shapes
    ------
    ``outputs (batch, *pde.output_shape(grid))`` or with time folded into channels
    ``(batch, len(times) * channels, *grid.shape)``; ``inputs (batch, len(pde.input_names),
    *grid.shape)``. Both are computed in the dtype of ``outputs``.
    """

    def __init__(
        self,
        pde: PDE,
        grid: Grid,
        weight: float = 1.0,
        boundary_weight: float = 1.0,
        initial_weight: float = 1.0,
        solution_scale: float = 1.0,
        precondition: bool = False,
    ) -> None:
        super().__init__()
        if grid.periodic != pde.periodic or grid.ndim != pde.ndim:
            raise ValueError(
                f"PDE '{pde.name}' needs a {'periodic' if pde.periodic else 'bounded'} {pde.ndim}D grid, got {grid}"
            )
        if not solution_scale > 0:
            raise ValueError(f"solution_scale must be positive, got {solution_scale}")
        self.pde, self.grid = pde, grid
        self.weights = {"interior": float(weight), "boundary": float(boundary_weight), "initial": float(initial_weight)}
        self.solution_scale = float(solution_scale)
        self.precondition = bool(precondition)

    def _unfold(self, outputs: torch.Tensor) -> torch.Tensor:
        shape = self.pde.output_shape(self.grid)
        if (
            outputs.ndim < 2
            or outputs[0].numel() != torch.Size(shape).numel()
            or tuple(outputs.shape[-self.grid.ndim :]) != self.grid.shape
        ):
            raise ValueError(
                f"{self.pde.name} outputs must have shape (batch, *{shape}) (time may be folded into channels), got {tuple(outputs.shape)}"
            )
        return outputs.reshape(len(outputs), *shape)

    def _interior(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        r = self.pde.residual(outputs, inputs, self.grid)
        return inverse_laplacian(r, self.grid) if self.precondition else r

    def terms(self, outputs: torch.Tensor, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms that apply to this PDE, each per sample ``(batch,)``."""
        u = self._unfold(outputs)
        inputs = inputs.to(u)
        pde, grid, tiny = self.pde, self.grid, torch.finfo(u.dtype).tiny
        with torch.no_grad():
            reference = torch.zeros_like(u) if pde.times is None else inputs.unsqueeze(1).expand_as(u)
            scale = _norms(self._interior(reference, inputs))
        terms = {"interior": _norms(self._interior(u, inputs)) / scale.clamp_min(tiny)}
        boundary = pde.boundary_residual(u, inputs, grid)
        if boundary is not None:
            terms["boundary"] = _norms(boundary) / (boundary[0].numel() ** 0.5 * self.solution_scale)
        initial = pde.initial_residual(u, inputs, grid)
        if initial is not None:
            terms["initial"] = _norms(initial) / _norms(inputs).clamp_min(tiny)
        return terms

    def per_sample(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The weighted sum of the terms per sample: ``(batch,)``."""
        return sum(self.weights[name] * value for name, value in self.terms(outputs, inputs).items())

    def forward(self, outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """The batch mean of :meth:`per_sample`: a scalar."""
        return self.per_sample(outputs, inputs).mean()


class PhysicsTerm:
    """The physics-informed part of the ``map`` task (``train.physics``).

    Items are the ``n`` labelled training samples followed by ``config.extra_inputs`` inputs
    drawn from the PDE (:func:`extra_inputs`); all are held at the physics grid, the data grid
    refined ``config.refine`` times (the labelled inputs redrawn there by
    :func:`redraw_inputs` and checked against the stored ones). One forward pass on the
    physics grid serves both terms: the data loss compares the prediction at the data nodes
    (every ``refine``-th node) with the stored outputs.

    Parameters
    ----------
    config : PhysicsConfig
    train : FieldSource
        The labelled training samples (time folded into channels), from an oplearn file.
    seed : int
        The run seed (draws the extra inputs).

    Notes
    -----
    The boundary unit ``solution_scale`` of the :class:`PhysicsLoss` ``loss_fn`` is set by the task once
    the output normaliser is fitted.
    """

    def __init__(self, config: PhysicsConfig, train: FieldSource, seed: int) -> None:
        self.config = config
        stored = torch.cat([chunk.inputs for chunk in train.chunks(256)])
        example = train.read(torch.zeros(1, dtype=torch.long))
        pde, grid = pde_from_meta(example.meta)
        if grid != train.grid:
            raise DataError(
                f"'{example.path}': the recorded grid {grid.shape} differs from the data's {train.grid.shape}"
            )
        self.grid = grid.refine(config.refine)
        self.loss_fn = PhysicsLoss(
            pde,
            self.grid,
            config.weight,
            config.boundary_weight,
            config.initial_weight,
            precondition=config.precondition,
        )
        labelled = stored
        if config.refine > 1:
            labelled = redraw_inputs(example.meta, self.grid, len(stored)).to(stored.dtype)
            if not torch.allclose(
                subsample(labelled, config.refine, grid.ndim), stored, rtol=1e-5, atol=1e-6 * float(stored.abs().max())
            ):
                raise DataError(
                    f"'{example.path}': its inputs cannot be redrawn on a finer grid from its recipe "
                    f"(PDE '{pde.name}' draws resolution-dependent inputs); use train.physics.refine=1"
                )
        extra = extra_inputs(pde, config.extra_inputs, self.grid, seed).to(stored.dtype)
        self.inputs = torch.cat([labelled, extra])
        self.n_labelled = len(stored) if config.data_weight > 0 else 0

    def __len__(self) -> int:
        return len(self.inputs)

    def loss(
        self,
        net: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
        train: FieldSource,
        data_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Mean over the items ``idx`` of ``data_weight * data_loss`` (labelled items) plus the physics loss.

        ``train`` holds the labelled samples (the stored outputs are read from it for the
        labelled items only); ``data_loss`` is a batch mean.
        """
        x = self.inputs[idx].to(device)
        with autocast:
            pred = net(x)
        pred = pred.float()
        total = self.loss_fn.per_sample(pred, x).sum()
        labelled = idx < self.n_labelled
        if labelled.any():
            data = subsample(pred[labelled.to(device)], self.config.refine, self.grid.ndim)
            total = total + self.config.data_weight * int(labelled.sum()) * data_loss(
                data, train.read(idx[labelled]).outputs.to(device)
            )
        return total / len(idx)
