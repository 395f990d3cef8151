"""``train.task: refiner``: PDE-Refiner on trajectories (:mod:`oplearn.models.refiner`).

The items, data, validation (a full rollout), evaluation and report are those of the
``one_step`` task (:class:`~oplearn.training.tasks.OneStepTask`); the model is a
:class:`~oplearn.models.refiner.PDERefiner` around any grid model of the zoo, trained with
:func:`~oplearn.models.refiner.refiner_loss`; its normalisers are fitted on the training
trajectories' frames (inputs) and frame increments (the refined quantity). The refinement level and noise of each item
are drawn from a generator seeded by ``(seed, epoch, first item)``, so runs are reproducible
and resumable.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelMoments
from oplearn.models.refiner import PDERefiner, refiner_loss
from oplearn.seeding import generator
from oplearn.training.long_rollout_config import RefinerConfig
from oplearn.training.rollout import window_frames, window_targets
from oplearn.training.tasks import OneStepTask, build_operator, check_fits, mode_projection


def refiner_section(config: RunConfig) -> RefinerConfig:
    return config.refiner if config.refiner is not None else RefinerConfig()


class RefinerTask(OneStepTask):
    """PDE-Refiner: a one-step model refined by ``refiner.steps`` denoising steps (see the module docstring)."""

    name = "refiner"
    config_section = "refiner"

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        if config.train.pushforward:
            raise ValueError("train.task=refiner trains single steps: set train.pushforward=0")

    @classmethod
    def _model(cls, config: RunConfig, channels: int, history: int, grid: Grid) -> PDERefiner:
        section = refiner_section(config)
        embedding = section.step_embedding if config.model.conditionable else 0
        denoiser = build_operator(config, (history + 1) * channels + (embedding == 0), channels, grid, embedding)
        model = PDERefiner(denoiser, channels, history, section.steps, section.min_noise_std, embedding)
        model.projection = mode_projection(config, grid)
        return model

    def build_model(self) -> PDERefiner:
        channels = self.example.outputs.shape[2]
        model = self._model(self.config, channels, self.history, self.grid)
        frames, increments = ChannelMoments(), ChannelMoments()
        for chunk in self.train.chunks(self.config.data.batch_size):  # trajectories (n, T + 1, C, *spatial)
            frames.add(chunk.outputs.flatten(0, 1))
            increments.add(chunk.outputs.diff(dim=1).flatten(0, 1))
        model.frame_norm.fit_moments(frames)
        model.step_norm.fit_moments(increments)
        if model.projection is not None:
            model.projection.fit(self.training_frames())
        return model

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> PDERefiner:
        channels = info["out_channels"]
        return cls._model(config, channels, info["history"], Grid.from_dict(info["grid"]))

    def check_model(self, model: PDERefiner) -> None:
        check_fits(model, self.grid, torch.zeros(1, self.history * model.channels, *self.grid.shape))

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
        x = window_frames(trajectories, pairs, self.history).flatten(1, 2).to(device)
        y = window_targets(trajectories, pairs).to(device)
        gen = generator(self.config.seed, 23, getattr(self, "epoch", 0), int(idx[0]))
        with autocast:
            return refiner_loss(model, net, x, y, gen, refiner_section(self.config).first_step_fraction)
