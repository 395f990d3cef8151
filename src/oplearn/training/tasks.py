"""What a training run learns: a :class:`Task` turns data into a model, a loss and validation.

The training loop (:mod:`oplearn.training.run`) is shared by every task: it shuffles the
task's ``len(task)`` items each epoch with a generator seeded by ``(seed, epoch)``, splits
each global batch over processes and micro-batches, steps the optimiser, validates, logs and
checkpoints. A task decides what an item is (a sample, a ``(sample, t)`` window, a problem
instance), how the model is built and how a batch of items is scored.

``train.task`` in the config names the task; :data:`TASKS` maps names to classes. Tasks
defined in other modules are registered there by their import path, so that importing
this module stays cheap.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from oplearn.config import DatasetSpec, RunConfig
from oplearn.data.files import FieldData, check_data_file, load_fields, read_meta
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.data.problem import describe_problem
from oplearn.data.readers import detect_format, read_dataset
from oplearn.data.source import FieldSource, LazySource, MemorySource
from oplearn.errors import ConfigError
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelMoments
from oplearn.layers.projection import ModeProjection
from oplearn.losses import RelativeH1Loss, RelativeL2Loss
from oplearn.metrics import per_time_step, relative_l2
from oplearn.models.operator import OperatorModel
from oplearn.physics import PhysicsTerm
from oplearn.training.rollout import full_trajectory, rollout, step, window_frames, window_targets, windows

if TYPE_CHECKING:
    from oplearn.report import Report
    from oplearn.training.rundir import Run


@dataclass(frozen=True)
class EvaluateOptions:
    """How a run is evaluated (``oplearn evaluate`` options); each task uses what applies to it.

    Attributes
    ----------
    batch_size : samples per forward pass
    device : where the model runs
    force : evaluate on data that do not match the training data's PDE or layout
    samples : samples / points / problems an estimate draws (``None``: the task's default)
    seeds : independent estimator seeds, for confidence intervals (``None``: the task's default)
    """

    batch_size: int = 32
    device: str = "cpu"
    force: bool = False
    samples: int | None = None
    seeds: int | None = None


def ensure_dataset(spec: DatasetSpec, progress: bool = True) -> Path:
    """The dataset file of ``spec``, generated from its recipe first if it does not exist."""
    path = Path(spec.path)
    if not path.exists() and spec.generate is not None:
        g = spec.generate
        generate_dataset(make_pde(g.pde, g.params), g.n, g.resolution, path, seed=g.seed, progress=progress)
    return path


def check_datasets(specs: list[DatasetSpec]) -> None:
    """Before anything is generated or trained: every file of ``specs`` exists or has a recipe
    (one-line DataError naming the first that has neither), and every recipe names a known PDE
    with valid parameters."""
    for spec in specs:
        if spec.generate is not None:
            make_pde(spec.generate.pde, spec.generate.params)
        elif not Path(spec.path).exists():
            check_data_file(Path(spec.path))


def check_fits(model: nn.Module, grid: Grid, *inputs: torch.Tensor) -> None:
    """One forward pass ``model(*inputs)`` without gradients: a model that cannot take the
    training data (more Fourier modes than the grid holds, a grid its levels cannot halve) is
    refused in one line (:class:`ConfigError`) before the run directory is written."""
    try:
        with torch.no_grad():
            model.eval()(*inputs)
    except (ValueError, RuntimeError) as err:
        message = " ".join(str(err).split())
        raise ConfigError(
            f"config: the model does not fit the {'x'.join(map(str, grid.shape))} training grid: {message}"
        ) from None
    finally:
        model.train()


def check_operator_fits(model: OperatorModel, grid: Grid) -> None:
    """:func:`check_fits` of an operator on one zero input field on ``grid``."""
    check_fits(model, grid, torch.zeros(1, model.in_channels, *grid.shape))


def read_training_data(path: Path, stop: int | None, lazy: bool) -> tuple[int, FieldData | None]:
    """The number of samples in ``path`` and, unless ``lazy``, its first ``stop`` samples (all when
    ``None``). oplearn files are read up to ``stop`` only; files of other formats
    (:mod:`oplearn.data.readers`) are read whole and cannot be read lazily."""
    if detect_format(path) == "oplearn":
        n_file = read_meta(path)["n"]
        return n_file, None if lazy else load_fields(path, limit=min(stop or n_file, n_file))
    if lazy:
        raise ConfigError(
            f"config: data.lazy reads oplearn files; convert '{path}' first: oplearn convert {path} OUT.h5"
        )
    data = read_dataset(path)
    return len(data), data if stop is None else data.select(slice(0, min(stop, len(data))))


def build_operator(
    config: RunConfig, in_channels: int, out_channels: int, grid: Grid, condition_channels: int = 0
) -> OperatorModel:
    """The model of ``config`` wrapped to take and return physical fields on ``grid``'s domain;
    with ``condition_channels``, a conditioned model (``model.conditionable``) called as
    ``model(x, condition)``."""
    extra = grid.ndim if config.train.positional_features else 0
    conditioned = {"condition_channels": condition_channels} if condition_channels else {}
    net = config.model.build(in_channels + extra, out_channels, grid.ndim, grid_shape=grid.shape, **conditioned)
    return OperatorModel(
        net, in_channels, out_channels, grid.domain, grid.periodic, config.train.positional_features, grid.shape
    )


def mode_projection(config: RunConfig, grid: Grid) -> ModeProjection | None:
    """The (unfitted) projection of predicted frames of ``train.mode_projection``, or ``None``;
    a one-line ConfigError on a non-periodic grid."""
    if not config.train.mode_projection:
        return None
    if not grid.periodic:
        raise ConfigError("config: train.mode_projection projects onto Fourier modes: it needs periodic data")
    return ModeProjection(grid.ndim)


def map_view(data: FieldData, input_frames: int | None) -> FieldData:
    """The input -> output pairs a ``map`` operator learns from ``data``.

    Without ``input_frames`` trajectory outputs are folded into channels (``u0 -> u(t_1..t_T)``,
    :meth:`FieldData.time_as_channels`). With ``input_frames = k`` the full trajectory
    ``u0 .. uT`` is split: frames ``0 .. k-1`` in, frames ``k .. T`` out, each folded into
    channels (the FNO paper's Navier-Stokes setting has ``k = 10``).

    Shapes: trajectories ``(n, T, C, *spatial)`` -> inputs ``(n, k C, *spatial)``,
    outputs ``(n, (T + 1 - k) C, *spatial)``.
    """
    if input_frames is None:
        return data.time_as_channels()
    try:
        trajectory = full_trajectory(data.inputs, data.outputs, data.time)
    except ValueError as err:
        raise ConfigError(f"config: data.input_frames needs trajectory data: '{data.path}': {err}") from None
    if trajectory.shape[1] <= input_frames:
        raise ConfigError(
            f"config: data.input_frames={input_frames} leaves no output frame in the {trajectory.shape[1]}-frame "
            f"trajectories of '{data.path}'; lower it"
        )
    inputs, outputs = trajectory[:, :input_frames].flatten(1, 2), trajectory[:, input_frames:].flatten(1, 2)
    return FieldData(inputs, outputs, data.grid, data.meta, data.path)


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Run ``model`` over ``inputs`` in batches, returning predictions on the CPU."""
    model.eval()
    return torch.cat([model(inputs[i : i + batch_size].to(device)).cpu() for i in range(0, len(inputs), batch_size)])


@torch.no_grad()
def predict_rollout(
    model: nn.Module, trajectory: torch.Tensor, history: int, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Roll ``model`` out from the first ``history`` frames of each trajectory to its end.

    Shapes: ``trajectory: (n, T + 1, C, *spatial) -> (n, T + 1 - history, C, *spatial)`` on the CPU.
    """
    model.eval()
    steps = trajectory.shape[1] - history
    return torch.cat(
        [
            rollout(model, trajectory[i : i + batch_size, :history].to(device), steps).cpu()
            for i in range(0, len(trajectory), batch_size)
        ]
    )


class Task:
    """What a run learns. One instance per run, made from the config (it loads its data).

    Subclasses set ``name`` and implement the methods below; ``net`` in :meth:`loss` is the
    module to call for gradients (wrapped by DDP when distributed), ``model`` the plain one.
    """

    name: ClassVar[str]
    #: Whether the task learns from the dataset file ``data.path`` (which is then required).
    data_file: ClassVar[bool] = True
    #: The top-level config section this task owns (one of :data:`oplearn.config.TASK_SECTIONS`), if any.
    config_section: ClassVar[str | None] = None
    #: The kinds of models (``ModelSpec.kind``) it trains; empty when its network is configured in its own section.
    model_kinds: ClassVar[tuple[str, ...]] = ("grid",)
    #: The ``model.name`` of a config without a ``model`` section.
    default_model: ClassVar[str | None] = "fno"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        self.config = config
        self.progress = progress

    def build_model(self) -> nn.Module:
        """A new model for this task's data, with its normalisers fitted."""
        raise NotImplementedError

    def info(self) -> dict:
        """JSON-able facts about the data that :meth:`rebuild` needs; kept in checkpoints."""
        raise NotImplementedError

    def check_model(self, model: nn.Module) -> None:
        """Raise a one-line ConfigError if ``model`` cannot take this task's data (:func:`~oplearn.training.tasks.check_fits`);
        called before the run directory is written."""

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> nn.Module:
        """An untrained model of the saved shape, to load a checkpoint's weights into."""
        raise NotImplementedError

    def parameter_groups(self, model: nn.Module) -> list[dict]:
        """The optimiser's parameter groups (options beside ``params`` override ``train.lr`` and
        ``train.weight_decay`` for that group); one group of every parameter by default."""
        return [{"params": list(model.parameters())}]

    def __len__(self) -> int:
        """Items per epoch; the loop shuffles and batches their indices."""
        raise NotImplementedError

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        """Mean loss (float32 scalar) over the items ``idx`` (never empty)."""
        raise NotImplementedError

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        """Validation metrics; ``val_relative_l2`` (lower is better) selects the best checkpoint."""
        return {}

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch (0-based) is trained."""

    def state_dict(self) -> dict:
        """Task state that must survive a resume (e.g. target caches)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        """Raise ``ValueError`` (one line, said as a config error) for settings this task cannot
        use; called whenever a config naming this task is validated."""

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        """Test metrics of a trained run: rows of JSON-able dicts, each with a ``key`` (what was
        evaluated: a file, a held-out set; a later evaluation of the same key replaces the row in
        ``metrics.json``), a ``label`` for tables and a ``metrics`` dict of numbers.

        ``paths`` are the files named on the command line (or the config's ``data.test``);
        tasks that draw their own test problems may ignore them.
        """
        raise NotImplementedError

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        """Add this task's sections (figures, tables, text) to ``report``, given the rows of
        :meth:`evaluate`; the run's description and training curves are added by
        :func:`oplearn.report.make_report`."""


def _data_loss(config: RunConfig, grid: Grid) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if config.train.loss == "relative_h1":
        h1 = RelativeH1Loss()
        return lambda pred, true: h1(pred, true, grid)
    return RelativeL2Loss()


class FieldTask(Task):
    """A task on a dataset file: the first ``data.n_train`` samples train, the next ``data.n_val`` validate.

    ``self.train`` and ``self.val`` are :mod:`sources <oplearn.data.source>` of the prepared
    samples: in memory, or read from the file batch by batch when ``data.lazy`` is set.
    """

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        path = ensure_dataset(config.data.train_spec, progress)
        n_val = config.data.n_val
        stop = None if config.data.n_train is None else config.data.n_train + n_val
        n_file, raw = read_training_data(path, stop, config.data.lazy)
        n_train = config.data.n_train if config.data.n_train is not None else n_file - n_val
        if n_train <= 0 or n_train + n_val > n_file:
            raise ConfigError(
                f"config: data.n_train={n_train} + data.n_val={n_val} exceeds the {n_file} samples in '{path}'"
            )
        self.train: FieldSource
        self.val: FieldSource | None
        if config.data.lazy:
            self.train = LazySource(path, 0, n_train, self.prepare)
            self.val = LazySource(path, n_train, n_train + n_val, self.prepare) if n_val else None
        else:
            data = self.prepare(raw.select(slice(0, n_train + n_val)))
            self.train = MemorySource(data.select(slice(0, n_train)))
            self.val = MemorySource(data.select(slice(n_train, None))) if n_val else None
        self.grid = self.train.grid
        self.example = self.train.read(
            torch.zeros(1, dtype=torch.long)
        )  # one prepared sample: the shapes (checks the view early)
        self.data_loss = _data_loss(config, self.grid)

    def prepare(self, data: FieldData) -> FieldData:
        """The task's view of samples read from the file; it must act sample by sample (it is
        applied to the whole file in memory, or to each batch read lazily)."""
        return data

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> OperatorModel:
        return build_operator(config, info["in_channels"], info["out_channels"], Grid.from_dict(info["grid"]))

    def check_model(self, model: OperatorModel) -> None:
        check_operator_fits(model, self.grid)


class MapTask(FieldTask):
    """Learn the operator ``inputs -> outputs`` of a dataset (:func:`map_view` of trajectories).

    With ``train.physics`` the loss adds the PDE's residual and the items extend to unlabelled
    inputs (:class:`oplearn.physics.PhysicsTerm`); ``data_weight = 0`` trains without the
    stored outputs, the output normaliser then having mean 0 and std ``output_scale``. The
    boundary term is measured in units of the output normaliser's std.
    """

    name = "map"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        physics = config.train.physics
        self.physics = None if physics is None else PhysicsTerm(physics, self.train, config.seed)

    def prepare(self, data: FieldData) -> FieldData:
        return map_view(data, self.config.data.input_frames)

    def build_model(self) -> OperatorModel:
        model = build_operator(self.config, self.example.inputs.shape[1], self.example.outputs.shape[1], self.grid)
        data_free = self.physics is not None and self.physics.config.data_weight == 0
        inputs, outputs = ChannelMoments(), ChannelMoments()
        for chunk in self.train.chunks(self.config.data.batch_size):
            inputs.add(chunk.inputs)
            if not data_free:
                outputs.add(chunk.outputs)
        model.input_norm.fit_moments(inputs)
        if data_free:
            model.output_norm.std.fill_(self.physics.config.output_scale)
        else:
            model.output_norm.fit_moments(outputs)
        if self.physics is not None:
            self.physics.loss_fn.solution_scale = float(model.output_norm.std.mean())
        return model

    def info(self) -> dict:
        return {
            "in_channels": self.example.inputs.shape[1],
            "out_channels": self.example.outputs.shape[1],
            "grid": self.grid.to_dict(),
            "problem": describe_problem(self.example.meta),
        }

    def __len__(self) -> int:
        return len(self.train) if self.physics is None else len(self.physics)

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        if self.physics is not None:
            return self.physics.loss(net, idx, device, autocast, self.train, self.data_loss)
        batch = self.train.read(idx)
        x, y = batch.inputs.to(device), batch.outputs.to(device)
        with autocast:
            pred = net(x)
        return self.data_loss(pred.float(), y)

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        errors = [
            relative_l2(predict(model, chunk.inputs, batch_size, device), chunk.outputs)
            for chunk in self.val.chunks(batch_size)
        ]
        return {"val_relative_l2": torch.cat(errors).mean().item()}

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        from oplearn.evaluate import evaluate_map

        return evaluate_map(run, paths, options)

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        from oplearn.report import report_map

        report_map(run, rows, report)


class OneStepTask(FieldTask):
    """Learn the next frame of trajectories from the last ``train.history`` frames.

    An item is a ``(sample, t)`` window (:func:`oplearn.training.rollout.windows`); the
    trained step follows ``train.pushforward`` steps of the model without gradient.
    Validation scores a full rollout from each trajectory's first ``history`` frames.
    Prepared samples hold whole trajectories ``(T + 1, C, *spatial)`` as outputs.
    """

    name = "one_step"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.history, self.pushforward = config.train.history, config.train.pushforward
        try:
            self.pairs = windows(len(self.train), self.example.outputs.shape[1], self.history, self.pushforward)
        except ValueError as err:
            raise ConfigError(f"config: train.task={self.name}: {err}") from None

    def prepare(self, data: FieldData) -> FieldData:
        try:
            trajectory = full_trajectory(data.inputs, data.outputs, data.time)
        except ValueError as err:
            raise ConfigError(f"config: train.task={self.name}: '{data.path}': {err}") from None
        return FieldData(trajectory[:, 0], trajectory, data.grid, data.meta, data.path, data.time)

    def build_model(self) -> OperatorModel:
        model = self.rebuild(self.config, self.info())
        frames = ChannelMoments.of(self.training_frames())
        model.input_norm.mean.copy_(frames.mean.repeat(self.history))
        model.input_norm.std.copy_(frames.std.repeat(self.history))
        if model.increment:
            increments = ChannelMoments.of(
                chunk.outputs.diff(dim=1).flatten(0, 1) for chunk in self.train.chunks(self.config.data.batch_size)
            )
            model.output_norm.fit_moments(increments)
        else:
            model.output_norm.fit_moments(frames)
        if model.projection is not None:
            model.projection.fit(self.training_frames())
        return model

    def training_frames(self) -> Iterator[torch.Tensor]:
        """The frames of the training trajectories, ``(frames, C, *spatial)`` per chunk of trajectories."""
        for chunk in self.train.chunks(self.config.data.batch_size):
            yield chunk.outputs.flatten(0, 1)

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> OperatorModel:
        model = super().rebuild(config, info)
        model.increment = config.train.target == "increment"
        model.projection = mode_projection(config, Grid.from_dict(info["grid"]))
        return model

    def info(self) -> dict:
        channels = self.example.outputs.shape[2]
        return {
            "in_channels": self.history * channels,
            "out_channels": channels,
            "grid": self.grid.to_dict(),
            "task": self.name,
            "history": self.history,
            "problem": describe_problem(self.example.meta),
        }

    def __len__(self) -> int:
        return len(self.pairs)

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        pairs = self.pairs[idx]
        # the trajectories of the batch's samples, each read once; pairs renumbered into them
        samples, local = torch.unique(pairs[:, 0], return_inverse=True)
        trajectories = self.train.read(samples).outputs
        pairs = torch.stack([local, pairs[:, 1]], dim=1)
        frames = window_frames(trajectories, pairs, self.history).to(device)
        if self.pushforward:
            # The unrolled steps call the plain model: no gradient, no DDP synchronisation.
            with torch.no_grad(), autocast:
                for _ in range(self.pushforward):
                    frames = step(model, frames)[1].float()
        y = window_targets(trajectories, pairs, self.pushforward).to(device)
        with autocast:
            pred = net(frames.flatten(1, 2))
        if self.config.train.loss == "mse":  # in units of the output normaliser's standard deviation
            scale = model.output_norm.std.reshape(1, -1, *([1] * (y.ndim - 2)))
            return ((pred.float() - y) / scale).square().mean()
        return self.data_loss(pred.float(), y)

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        errors = []
        for chunk in self.val.chunks(batch_size):
            pred = predict_rollout(model, chunk.outputs, self.history, batch_size, device)
            errors.append(per_time_step(relative_l2, pred, chunk.outputs[:, self.history :]))
        return {"val_relative_l2": torch.cat(errors).mean().item()}

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        from oplearn.evaluate import evaluate_one_step

        return evaluate_one_step(run, paths, options)

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        from oplearn.report import report_one_step

        report_one_step(run, rows, report)


TASKS: dict[str, type[Task] | str] = {
    "map": MapTask,
    "one_step": OneStepTask,
    "wos": "oplearn.wos.training:WoSTask",
    "diffusion": "oplearn.diffusion.task:DiffusionTask",
    "points": "oplearn.geometry.task:PointTask",
    "sampler": "oplearn.sampling.task:SamplerTask",
    "kolmogorov": "oplearn.kolmogorov.task:KolmogorovTask",
    "refiner": "oplearn.training.refiner:RefinerTask",
    "coarse_graining": "oplearn.training.coarse_graining:CoarseGrainingTask",
}
"""Task name -> class, or ``"module:Class"`` for tasks imported on first use."""


def task_class(name: str) -> type[Task]:
    """The task class registered as ``name``."""
    try:
        entry = TASKS[name]
    except KeyError:
        raise ConfigError(f"config: train.task '{name}' is unknown; choose one of {', '.join(TASKS)}") from None
    if isinstance(entry, str):
        module, _, cls = entry.partition(":")
        entry = getattr(importlib.import_module(module), cls)
    return entry


def rebuild_model(config: RunConfig, data_info: str | dict) -> nn.Module:
    """The untrained model a checkpoint's ``data`` entry describes."""
    info = json.loads(data_info) if isinstance(data_info, str) else data_info
    return task_class(config.train.task).rebuild(config, info)
