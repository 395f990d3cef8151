r"""Baselines for sparse-observation problems: interpolation (then a solve) and operator regression.

* :func:`interpolate`: piecewise-linear interpolation of the observed nodes of one channel over
  the Delaunay triangulation (``scipy.interpolate.griddata``), nearest-neighbour outside their
  convex hull.
* :func:`interpolate_and_solve` (forward problems): interpolate the PDE's inputs, project a
  two-valued coefficient (Darcy's ``low``/``high``) onto its values by the midpoint threshold,
  and solve the PDE with its reference solver.
* :func:`regression_pairs` (both directions): the training pairs of a neural-operator
  regression from the interpolated observations (plus the observation mask as a channel) to the
  unknown fields, to be trained with the ordinary ``map`` task (``oplearn train``).

Shapes
------
``y (batch, m)``; fields ``(batch, C, *spatial)`` with channels the PDE's inputs then outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.interpolate import griddata

from oplearn.grids import Grid
from oplearn.inverse.guidance import two_valued
from oplearn.inverse.observations import Observation, PointObservation
from oplearn.pdes.base import PDE


def interpolate(observation: Observation, y: torch.Tensor, grid: Grid, channel: int) -> torch.Tensor:
    """Interpolate the observed nodes of ``channel`` onto ``grid``: ``(batch, m) -> (batch, *grid.shape)`` float64."""
    mask = observation.mask()
    if not mask[channel].any():
        raise ValueError(f"channel {channel} has no observed nodes to interpolate")
    per_channel = mask.flatten(1).sum(dim=1)
    start = int(per_channel[:channel].sum())
    values = y[:, start : start + int(per_channel[channel])].detach().cpu().double().numpy()
    coords = grid.coordinates(torch.float64)  # (ndim, *shape)
    points = coords[:, mask[channel]].T.numpy()
    targets = coords.flatten(1).T.numpy()
    out = []
    for v in values:
        linear = griddata(points, v, targets, method="linear")
        nearest = griddata(points, v, targets, method="nearest")
        out.append(np.where(np.isnan(linear), nearest, linear))
    return torch.from_numpy(np.stack(out)).reshape(len(values), *grid.shape)


def interpolate_and_solve(pde: PDE, observation: Observation, y: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Forward baseline: interpolated (and, if two-valued, thresholded) inputs and their solution.

    Every input channel must be observed. Returns ``(batch, C_in + C_out, *grid.shape)`` float64.
    """
    inputs = torch.stack([interpolate(observation, y, grid, c) for c in range(len(pde.input_names))], dim=1)
    for c, name in enumerate(pde.input_names):
        if name in two_valued(pde):
            low, high = two_valued(pde)[name]
            inputs[:, c] = torch.where(inputs[:, c] >= 0.5 * (low + high), high, low)
    return torch.cat([inputs, pde.solve(inputs, grid)], dim=1)


def regression_input(observation: Observation, y: torch.Tensor, grid: Grid, observed: list[int]) -> torch.Tensor:
    """The regression baseline's input: interpolated ``observed`` channels and the mask of the first.

    ``(batch, m) -> (batch, len(observed) + 1, *grid.shape)`` float64.
    """
    interpolated = [interpolate(observation, y, grid, c) for c in observed]
    mask = observation.mask()[observed[0]].double().expand(len(y), *grid.shape)
    return torch.stack([*interpolated, mask], dim=1)


def regression_pairs(
    fields: torch.Tensor,
    grid: Grid,
    points: int,
    observed: list[int],
    targets: list[int],
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training pairs of the regression baseline, with a fresh random ``points``-node mask per sample.

    Inputs are :func:`regression_input` of noisy observations of the ``observed`` channels,
    outputs the ``targets`` channels of ``fields (n, C, *grid.shape)``.
    Returns ``((n, len(observed) + 1, *grid.shape), (n, len(targets), *grid.shape))``.
    """
    shape = tuple(fields.shape[1:])
    xs = []
    for sample in fields:
        obs = PointObservation(shape, points, channels=observed, noise=noise, generator=generator)
        xs.append(regression_input(obs, obs.observe(sample[None].double(), generator), grid, observed)[0])
    return torch.stack(xs), fields[:, targets].double()
