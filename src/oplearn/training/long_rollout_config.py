"""The config sections of the long-rollout tasks: ``refiner:`` (``train.task: refiner``) and
``coarse_graining:`` (``train.task: coarse_graining``).

Light on purpose (no torch): the run config is assembled from it.
"""

from __future__ import annotations

from pydantic import Field

from oplearn.schema import Strict


class RefinerConfig(Strict):
    """PDE-Refiner (:class:`oplearn.models.refiner.PDERefiner`): a one-step prediction refined by
    ``steps`` denoising steps with noise standard deviations ``min_noise_std ** (k / steps)``,
    ``k = 1 .. steps`` (in units of the standard deviation of the frame increments). The default,
    ``sqrt(4e-7)``, gives the noise levels of PDE-Refiner's reference implementation, which passes
    4e-7 as the variance of the last level. ``step_embedding``: channels of the embedding of
    :math:`k / K` that modulates every block of a ``conditionable`` backbone (fno, tfno, local_fno, uno); with 0,
    and for the other grid models, :math:`k / K` is one constant input channel instead.
    ``first_step_fraction``: the share of training samples on the one-step prediction
    :math:`k = 0` (the rest uniform over the refinement steps); ``None``: :math:`k` uniform over
    :math:`0 .. K`, as the reference."""

    steps: int = Field(default=3, gt=0)
    min_noise_std: float = Field(default=4e-7**0.5, gt=0, lt=1)
    step_embedding: int = Field(default=16, ge=0)
    first_step_fraction: float | None = Field(default=None, gt=0, lt=1)


class CoarseGrainingConfig(Strict):
    """A one-step operator trained on coarse data plus the PDE residual on a ``fine_factor``-times
    finer grid (:class:`oplearn.training.coarse_graining.CoarseGrainingTask`), weighted by
    ``pde_weight`` (0: data only). The model predicts ``sub_frames`` frames evenly spaced in each
    frame interval (the last is the next frame); the residual is taken on that finer time grid.
    ``init_from``: a coarse_graining run directory whose weights start this run (fine-tuning,
    e.g. on a few resolved trajectories)."""

    pde_weight: float = Field(default=0.1, ge=0)
    fine_factor: int = Field(default=2, gt=0)
    sub_frames: int = Field(default=8, gt=0)
    init_from: str | None = None


SECTIONS = {"refiner": RefinerConfig, "coarse_graining": CoarseGrainingConfig}
