r"""``train.task: coarse_graining``: a one-step operator from coarse-solver data plus the fine-grid PDE residual.

The coarse-graining recipe for chaotic systems: the data come from a cheap solver on a
coarse grid (the same equation, ``refine=1``), which is inaccurate at small scales; the PDE
itself, evaluated on a finer grid, corrects it. Being a neural operator, the model takes
any resolution, so the same network is scored on both. It predicts ``S`` sub-frames
(``coarse_graining.sub_frames``) inside each frame interval :math:`\Delta t`
(:class:`~oplearn.models.space_time.SubFrameOperator`), the last being the next frame:

.. math::

    \mathcal L = \mathcal L_{\text{data}}\big(G_S(u_t), u_{t+\Delta t}\big)
    + \lambda \, \frac{\sum_{k=1}^S \lVert r_k \rVert^2}{\sum_{k=1}^S \lVert \mathcal N(u_{k-1}) \rVert^2},
    \qquad
    r_k = \frac{u_k - u_{k-1}}{h} - \tfrac12 \big(\mathcal N(u_{k-1}) + \mathcal N(u_k)\big),
    \quad h = \frac{\Delta t}{S},

with :math:`u_0 = u_t` the coarse frame interpolated (trigonometrically) onto a grid
``fine_factor`` times finer, :math:`u_1, \dots, u_S = G(u_0)` the model's sub-frames on that
grid, :math:`\mathcal N` the PDE's right-hand side
(:meth:`oplearn.pdes.evolution.PeriodicEvolution.tendency`, the dataset's own PDE and
parameters) and :math:`\lambda` = ``coarse_graining.pde_weight`` (0: data only). The residual
is the trapezoidal rule on the sub-frame grid: for the exact solution it is :math:`O(h^2)`, so
it vanishes as ``sub_frames`` grows (:func:`trajectory_residual`). With one sub-frame and a
frame interval long against the flow's time scales it does not: the exact solution then
has a large residual and the loss biases the model towards a wrong, smoother solution.

Multi-fidelity fine-tuning: ``coarse_graining.init_from`` names a trained coarse-graining run
whose weights (and normalisers) start this one, e.g. a run on coarse-solver data fine-tuned
on a few resolved trajectories.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.errors import ConfigError, OplearnError
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelMoments
from oplearn.metrics import relative_l2
from oplearn.models.space_time import SubFrameOperator
from oplearn.models.uno import fourier_resample
from oplearn.pdes.evolution import PeriodicEvolution
from oplearn.physics import pde_from_meta
from oplearn.training.long_rollout_config import CoarseGrainingConfig
from oplearn.training.rollout import window_frames, window_targets
from oplearn.training.tasks import OneStepTask, check_operator_fits, mode_projection, predict


def trajectory_residual(pde: PeriodicEvolution, frames: torch.Tensor, h: float, grid: Grid) -> torch.Tensor:
    r"""Relative trapezoidal residual of a trajectory of steps ``h`` apart,
    :math:`\sum_k \lVert r_k \rVert^2 / \sum_k \lVert \mathcal N(u_{k-1}) \rVert^2` per sample
    (see the module docstring); :math:`O(h^4)` for the exact solution.

    Shapes: ``frames: (batch, S + 1, 1, *grid.shape) -> (batch,)`` (frame 0 the initial state).
    """
    rates = pde.tendency(frames[:, :, 0], grid)  # (batch, S + 1, *grid) float64
    r = frames[:, :, 0].double().diff(dim=1) / h - 0.5 * (rates[:, :-1] + rates[:, 1:])
    return r.flatten(1).square().sum(1) / rates[:, :-1].flatten(1).square().sum(1).clamp_min(1e-30)


class CoarseGrainingTask(OneStepTask):
    """One-step learning on coarse data with the fine-grid PDE residual on sub-frames (see the module docstring)."""

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

    @staticmethod
    def _operator(config: RunConfig, channels: int, grid: Grid) -> SubFrameOperator:
        section = config.coarse_graining if config.coarse_graining is not None else CoarseGrainingConfig()
        extra = grid.ndim if config.train.positional_features else 0
        net = config.model.build(channels + extra, section.sub_frames * channels, grid.ndim, grid_shape=grid.shape)
        model = SubFrameOperator(
            net, channels, section.sub_frames, grid.domain, grid.periodic, config.train.positional_features, grid.shape
        )
        model.projection = mode_projection(config, grid)
        return model

    def build_model(self) -> SubFrameOperator:
        channels = self.example.outputs.shape[2]
        model = self._operator(self.config, channels, self.grid)
        init = self.section.init_from
        if init is not None:
            self._load_initial(model, Path(init))
            return model
        frames = ChannelMoments.of(
            chunk.outputs.flatten(0, 1) for chunk in self.train.chunks(self.config.data.batch_size)
        )
        model.input_norm.fit_moments(frames)
        model.output_norm.mean.copy_(model.input_norm.mean.repeat(self.section.sub_frames))
        model.output_norm.std.copy_(model.input_norm.std.repeat(self.section.sub_frames))
        if model.projection is not None:
            model.projection.fit(self.training_frames())
        return model

    def _load_initial(self, model: SubFrameOperator, run_dir: Path) -> None:
        """Start from the weights and normalisers of the run ``coarse_graining.init_from``."""
        from oplearn.training.rundir import open_run

        try:
            initial = open_run(run_dir).model
        except OplearnError as err:
            raise ConfigError(f"config: coarse_graining.init_from: {err}") from None
        if not isinstance(initial, SubFrameOperator):
            raise ConfigError(f"config: coarse_graining.init_from='{run_dir}' is not a coarse_graining run")
        shapes = {k: tuple(v.shape) for k, v in initial.state_dict().items()}
        if shapes != {k: tuple(v.shape) for k, v in model.state_dict().items()}:
            raise ConfigError(
                f"config: coarse_graining.init_from='{run_dir}' has another model or number of sub-frames; use "
                "the model settings and coarse_graining.sub_frames of that run"
            )
        model.load_state_dict(initial.state_dict())

    def info(self) -> dict:
        return {**super().info(), "sub_frames": self.section.sub_frames}

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> SubFrameOperator:
        return cls._operator(config, info["out_channels"], Grid.from_dict(info["grid"]))

    def check_model(self, model: SubFrameOperator) -> None:
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

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        """``val_relative_l2``: the mean one-step relative L2 error over every frame pair of the
        validation trajectories, which selects the best checkpoint. (A rollout of a chaotic flow
        decorrelates from the truth within a few frames: its error would pick an arbitrary epoch.)"""
        if self.val is None:
            return {}
        errors = []
        for chunk in self.val.chunks(batch_size):
            inputs, targets = chunk.outputs[:, :-1].flatten(0, 1), chunk.outputs[:, 1:].flatten(0, 1)
            errors.append(relative_l2(predict(model, inputs, batch_size, device), targets))
        return {"val_relative_l2": torch.cat(errors).mean().item()}

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
                sub_frames = net(fine, sub_frames=True).float()  # (b, S, 1, *fine)
            frames = torch.cat([fine[:, None], sub_frames], dim=1)
            h = self.dt / self.section.sub_frames
            loss = (
                loss + self.section.pde_weight * trajectory_residual(self.pde, frames, h, self.fine_grid).mean().float()
            )
        return loss
