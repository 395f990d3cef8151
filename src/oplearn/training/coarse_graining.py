r"""``train.task: coarse_graining``: a one-step operator from coarse-solver data plus the fine-grid PDE residual.

The coarse-graining recipe for chaotic systems: the data come from a cheap solver on a
coarse grid (the same equation, ``refine=1``), which is inaccurate at small scales; the PDE
itself, evaluated on a finer grid, corrects it. Being a neural operator, the model takes
any resolution, so the same network is scored on both:

.. math::

    \mathcal L = \mathcal L_{\text{data}}\big(G(u_t), u_{t+\Delta t}\big)
    + \lambda \, \frac{\lVert r \rVert^2}{\lVert \mathcal N(u_t) \rVert^2}, \qquad
    r = \frac{G(u_t) - u_t}{\Delta t} - \tfrac12 \big(\mathcal N(u_t) + \mathcal N(G(u_t))\big),

with :math:`u_t` the coarse frame interpolated (trigonometrically) onto a grid
``fine_factor`` times finer, :math:`G` the model on that grid, :math:`\mathcal N` the
PDE's right-hand side (:meth:`oplearn.pdes.evolution.PeriodicEvolution.tendency`, the
dataset's own PDE and parameters) and :math:`\lambda` = ``coarse_graining.pde_weight``
(0: data only). The residual is the trapezoidal rule of one frame interval
:math:`\Delta t`: it vanishes for the exact solution only up to :math:`O(\Delta t^2)`, so
it informs the model when :math:`\Delta t` is short compared with the flow's time scales
and biases it otherwise (a reason physics losses can make results worse).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.errors import ConfigError
from oplearn.grids import Grid
from oplearn.models.operator import OperatorModel
from oplearn.models.uno import fourier_resample
from oplearn.pdes.evolution import PeriodicEvolution
from oplearn.physics import pde_from_meta
from oplearn.training.long_rollout_config import CoarseGrainingConfig
from oplearn.training.rollout import window_frames, window_targets
from oplearn.training.tasks import OneStepTask, check_operator_fits


def step_residual(
    pde: PeriodicEvolution, before: torch.Tensor, after: torch.Tensor, dt: float, grid: Grid
) -> torch.Tensor:
    r"""Relative trapezoidal residual of one step, :math:`\lVert r \rVert^2 / \lVert \mathcal N(u_t) \rVert^2`
    per sample (see the module docstring).

    Shapes: ``before, after: (batch, 1, *grid.shape) -> (batch,)``.
    """
    rate_before, rate_after = pde.tendency(before[:, 0], grid), pde.tendency(after[:, 0], grid)
    r = (after[:, 0].double() - before[:, 0].double()) / dt - 0.5 * (rate_before + rate_after)
    return r.flatten(1).square().sum(1) / rate_before.flatten(1).square().sum(1).clamp_min(1e-30)


class CoarseGrainingTask(OneStepTask):
    """One-step learning on coarse data with the fine-grid PDE residual (see the module docstring)."""

    name = "coarse_graining"
    config_section = "coarse_graining"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.section = config.coarse_graining if config.coarse_graining is not None else CoarseGrainingConfig()
        meta = self.example.meta
        pde = pde_from_meta(meta)[0] if "pde" in meta and "pde_params" in meta else None
        if not isinstance(pde, PeriodicEvolution):
            raise ConfigError(
                f"config: train.task=coarse_graining needs data of a periodic evolution PDE made by oplearn "
                f"generate (kuramoto_sivashinsky, kolmogorov_flow, ...); '{config.data.path}' holds {meta.get('pde')}"
            )
        time = self.example.time
        if time is None or len(time) < 2:
            raise ConfigError(f"config: train.task=coarse_graining needs stored frame times in '{config.data.path}'")
        self.pde, self.dt = pde, float(time[1] - time[0])
        self.fine_grid = self.grid.refine(self.section.fine_factor)

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        if config.train.history != 1 or config.train.pushforward:
            raise ValueError(
                "train.task=coarse_graining steps from one frame: set train.history=1 and train.pushforward=0"
            )

    def check_model(self, model: OperatorModel) -> None:
        super().check_model(model)
        if self.section.pde_weight > 0:
            try:
                check_operator_fits(model, self.fine_grid)
            except ConfigError as err:
                raise ConfigError(
                    f"{err}; coarse_graining.pde_weight > 0 evaluates the model on the "
                    f"{'x'.join(map(str, self.fine_grid.shape))} fine grid: choose a resolution-free model "
                    f"(fno, tfno, uno, local_fno, ...) or set coarse_graining.pde_weight=0"
                ) from None

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        pairs = self.pairs[idx]
        samples, local = torch.unique(pairs[:, 0], return_inverse=True)
        trajectories = self.train.read(samples).outputs
        pairs = torch.stack([local, pairs[:, 1]], dim=1)
        x = window_frames(trajectories, pairs, 1)[:, 0].to(device)  # (b, 1, *coarse)
        y = window_targets(trajectories, pairs).to(device)
        with autocast:
            pred = net(x)
        loss = self.data_loss(pred.float(), y)
        if self.section.pde_weight > 0:
            fine = fourier_resample(x, self.fine_grid.shape)
            with autocast:
                fine_pred = net(fine)
            residual = step_residual(self.pde, fine, fine_pred.float(), self.dt, self.fine_grid).mean()
            loss = loss + self.section.pde_weight * residual.float()
        return loss
