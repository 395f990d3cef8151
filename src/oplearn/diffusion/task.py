"""Training a diffusion prior with the shared loop (``train.task: diffusion``), and loading it back.

Each item is one training sample of the chosen fields; its loss is the EDM loss
(:mod:`oplearn.diffusion.edm`) at a log-normal noise level with white or GRF noise. Noise
levels and noise are drawn from a generator seeded by ``(seed, epoch, first item)`` of
each micro-batch, so runs are reproducible and resumable. Validation reports the
denoising error ``val_relative_l2``: the relative L2 error of
:math:`D(x_0 + \\sigma\\varepsilon; \\sigma)` against :math:`x_0` on the validation samples in
normalised units (per-channel mean 0 and standard deviation 1, so every channel counts),
averaged over the fixed levels :data:`VALIDATION_SIGMAS` with fixed noise.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.data.files import FieldData
from oplearn.diffusion.config import DiffusionConfig
from oplearn.diffusion.denoiser import FNODenoiser
from oplearn.diffusion.edm import EDMDenoiser, edm_loss, training_sigmas
from oplearn.diffusion.noise import GRFNoise, WhiteNoise, make_noise
from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelMoments
from oplearn.metrics import relative_l2
from oplearn.seeding import generator
from oplearn.training.tasks import FieldTask, check_fits

if TYPE_CHECKING:
    from oplearn.report import Report
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: Noise levels (normalised units) of the validation denoising error.
VALIDATION_SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0)


def _settings(config: RunConfig) -> DiffusionConfig:
    return config.diffusion if config.diffusion is not None else DiffusionConfig()


def noise_for(settings: DiffusionConfig, grid: Grid) -> WhiteNoise | GRFNoise:
    """The forward-process noise of ``settings`` on ``grid``'s box and node convention."""
    n = settings.noise
    if n.kind == "white":
        return make_noise("white")
    return make_noise("grf", alpha=n.alpha, tau=n.tau, periodic=grid.periodic, lengths=grid.lengths)


def build_prior(settings: DiffusionConfig, channels: int, grid: Grid) -> EDMDenoiser:
    """An untrained :class:`EDMDenoiser` around an :class:`FNODenoiser` for ``channels`` fields on ``grid``."""
    net = settings.net
    if any(2 * net.modes > n for n in grid.shape):
        raise OplearnError(
            f"config: diffusion.net.modes={net.modes} needs grids of at least {2 * net.modes} points per axis; "
            f"the data are {grid.shape}: lower diffusion.net.modes"
        )
    model = FNODenoiser(
        channels,
        modes=net.modes,
        width=net.width,
        scales=net.scales,
        n_dim=grid.ndim,
        embedding=net.embedding,
        projection_channels=net.projection_channels,
        periodic=grid.periodic,
    )
    return EDMDenoiser(model, sigma_data=settings.sigma_data, channels=channels)


class DiffusionTask(FieldTask):
    """Learn a denoiser of the data's fields (a diffusion prior)."""

    name = "diffusion"
    config_section = "diffusion"
    model_kinds = ()
    default_model = None

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        if config.data.test:
            raise ValueError(
                "data.test lists files to evaluate an operator on; a diffusion prior (train.task=diffusion) "
                "is evaluated on its own data: remove data.test"
            )

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.settings = _settings(config)
        self.noise = noise_for(self.settings, self.grid)
        self.channels = self._select(self.example).shape[1]
        self.epoch = 0

    def prepare(self, data: FieldData) -> FieldData:
        return data.time_as_channels()

    def _select(self, data: FieldData) -> torch.Tensor:
        which = self.settings.fields
        if which == "inputs":
            return data.inputs
        if which == "outputs":
            return data.outputs
        return torch.cat([data.inputs, data.outputs], dim=1)

    def _names(self) -> list[str]:
        c_in, c_out = self.example.inputs.shape[1], self.example.outputs.shape[1]
        names = {"inputs": [f"inputs[{i}]" for i in range(c_in)], "outputs": [f"outputs[{i}]" for i in range(c_out)]}
        return names["inputs"] * (self.settings.fields != "outputs") + names["outputs"] * (
            self.settings.fields != "inputs"
        )

    def build_model(self) -> EDMDenoiser:
        model = build_prior(self.settings, self.channels, self.grid)
        moments = ChannelMoments()
        for chunk in self.train.chunks(self.config.data.batch_size):
            moments.add(self._select(chunk))
        model.norm.fit_moments(moments)
        return model

    def check_model(self, model: EDMDenoiser) -> None:
        check_fits(model, self.grid, torch.zeros(1, self.channels, *self.grid.shape), torch.ones(1))

    def info(self) -> dict:
        return {
            "channels": self.channels,
            "grid": self.grid.to_dict(),
            "fields": self.settings.fields,
            "channel_names": self._names(),
            "noise": self.noise.to_dict(),
            "task": self.name,
        }

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> EDMDenoiser:
        return build_prior(_settings(config), info["channels"], Grid.from_dict(info["grid"]))

    def __len__(self) -> int:
        return len(self.train)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        gen = generator(self.config.seed, 17, self.epoch, int(idx[0]))
        x0 = model.encode(self._select(self.train.read(idx)).to(device))
        sigma = training_sigmas(len(idx), self.settings.p_mean, self.settings.p_std, gen, device=device)
        eps = self.noise.sample(tuple(x0.shape), gen, dtype=x0.dtype, device=device)
        with autocast:
            return edm_loss(net, x0, eps, sigma, self.settings.sigma_data).mean()

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        from oplearn.diffusion.evaluation import evaluate_prior

        return evaluate_prior(run, paths, options)

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        from oplearn.diffusion.evaluation import report_prior

        report_prior(run, rows, report)

    @torch.no_grad()
    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        model.eval()
        gen = generator(self.config.seed, 18)
        errors = []
        for sigma in VALIDATION_SIGMAS:
            for chunk in self.val.chunks(batch_size):
                z0 = model.encode(self._select(chunk).to(device))
                eps = self.noise.sample(tuple(z0.shape), gen, dtype=z0.dtype, device=device)
                s = torch.full((len(z0),), sigma, device=device)
                errors.append(relative_l2(model(z0 + sigma * eps, s).cpu(), z0.cpu()))
        return {"val_relative_l2": torch.cat(errors).mean().item()}


def load_prior(run_dir: str | Path, which: str = "best") -> tuple[EDMDenoiser, dict]:
    """The trained prior of a run directory and what describes it.

    Returns ``(denoiser, meta)``: ``denoiser(x, sigma)`` acts on *normalised* fields
    (``denoiser.encode`` / ``decode`` convert physical fields ``(batch, C, *spatial)``), and
    ``meta`` holds ``channels``, ``channel_names``, ``fields``, ``grid`` (:class:`Grid` of the
    training data), ``noise`` (the forward-process noise object, whose ``sample`` draws the
    sampler's initial noise at any resolution), ``sigma_data`` and ``config``.
    """
    from oplearn.training.checkpoint import load_checkpoint
    from oplearn.training.rundir import checkpoint_path, model_from_checkpoint

    state = load_checkpoint(checkpoint_path(run_dir, which))
    info = json.loads(state["data"])
    if info.get("task") != DiffusionTask.name:
        raise OplearnError(f"'{run_dir}' is not a diffusion prior (train.task is not 'diffusion')")
    model, config = model_from_checkpoint(state)
    grid = Grid.from_dict(info["grid"])
    meta = {
        "channels": info["channels"],
        "channel_names": info["channel_names"],
        "fields": info["fields"],
        "grid": grid,
        "noise": noise_for(_settings(config), grid),
        "sigma_data": model.sigma_data,
        "config": config,
    }
    return model, meta


@torch.no_grad()
def sample_prior(
    prior: EDMDenoiser,
    meta: dict,
    n: int,
    steps: int = 20,
    sampler: str = "dpmpp2m",
    schedule: str = "karras",
    resolution: tuple[int, ...] | None = None,
    seed: int = 0,
    churn: float = 0.0,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    progress: bool = False,
) -> torch.Tensor:
    """``n`` physical samples of a loaded prior (:func:`load_prior`) on a grid of ``resolution``
    nodes per axis (default the training grid), drawn from ``sigma_max`` times the prior's noise.

    Shapes: ``-> (n, C, *resolution)`` on the CPU.
    """
    from oplearn.diffusion.samplers import sample
    from oplearn.diffusion.schedules import SCHEDULES

    if schedule not in SCHEDULES:
        raise OplearnError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")
    shape = tuple(resolution) if resolution is not None else meta["grid"].shape
    if len(shape) != meta["grid"].ndim:
        raise OplearnError(f"resolution {shape} has {len(shape)} axes; the prior's fields have {meta['grid'].ndim}")
    device = next(prior.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    sigmas = SCHEDULES[schedule](steps, sigma_min, sigma_max)
    noise = meta["noise"]
    x = float(sigmas[0]) * noise.sample((n, meta["channels"], *shape), gen, device=device)
    try:
        z = sample(prior, x, sigmas, sampler, churn=churn, generator=gen, progress=progress, churn_noise=noise.sample)
    except ValueError as err:
        raise OplearnError(f"cannot sample at resolution {shape}: {err}") from None
    return prior.decode(z).cpu()
