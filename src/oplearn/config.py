"""Typed, validated run configuration.

A run is described by one YAML file (see ``configs/``) plus ``--set key=value``
overrides with dotted keys. Unknown keys and wrong types are reported as one line that
names the key. The fully resolved configuration is saved in the run directory.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from oplearn.diffusion.config import DiffusionConfig
from oplearn.errors import ConfigError
from oplearn.physics import PhysicsConfig
from oplearn.schema import Strict
from oplearn.wos.config import WoSConfig


_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class GenerateSpec(Strict):
    """The recipe of a dataset file, used to create it when it does not exist yet."""

    pde: str
    n: int = Field(gt=0)
    resolution: int = Field(gt=2)
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetSpec(Strict):
    """A dataset file, optionally with the recipe that makes it."""

    path: str
    generate: GenerateSpec | None = None


class DataConfig(Strict):
    """Training data: the first ``n_train`` samples of ``path`` train, the next ``n_val`` validate.

    ``path`` is required by the tasks that learn from a dataset file (``map``, ``one_step``);
    a task that makes its own supervision (``wos``) uses only ``batch_size``.

    ``input_frames = k`` makes a ``map`` run on trajectories learn frames ``k ..`` from frames
    ``0 .. k-1`` (:func:`oplearn.training.tasks.map_view`); unset, it learns all stored frames from ``u0``.

    ``lazy`` reads training and validation samples from the file batch by batch instead of
    loading them (:mod:`oplearn.data.source`): for files larger than memory; same results.
    """

    path: str | None = None
    generate: GenerateSpec | None = None
    n_train: int | None = Field(default=None, gt=0)
    n_val: int = Field(default=0, ge=0)
    test: list[DatasetSpec] = Field(default_factory=list)
    batch_size: int = Field(default=20, gt=0)
    input_frames: int | None = Field(default=None, gt=0)
    lazy: bool = False

    @property
    def train_spec(self) -> DatasetSpec:
        return DatasetSpec(path=self.path, generate=self.generate)


class FNOConfig(Strict):
    """Fourier neural operator (:class:`oplearn.models.FNO`)."""

    name: Literal["fno"] = "fno"
    modes: int = Field(default=12, gt=0)
    width: int = Field(default=32, gt=0)
    n_layers: int = Field(default=4, gt=0)
    lifting_channels: int | None = None
    projection_channels: int = Field(default=128, gt=0)
    padding: float = Field(default=0.0, ge=0.0, lt=1.0)
    activation_checkpointing: bool = False

    def build(self, in_channels: int, out_channels: int, n_dim: int, grid_shape: tuple[int, ...] | None = None):
        """``grid_shape`` (the training grid) is accepted for a uniform call and not needed."""
        from oplearn.models import FNO

        model = FNO(
            in_channels=in_channels,
            out_channels=out_channels,
            modes=(self.modes,) * n_dim,
            width=self.width,
            n_layers=self.n_layers,
            lifting_channels=self.lifting_channels,
            projection_channels=self.projection_channels,
            padding=self.padding,
        )
        model.activation_checkpointing = self.activation_checkpointing
        return model


def _model_configs() -> tuple[type[BaseModel], ...]:
    """Every model's config class (each lives beside its model)."""
    from oplearn.models.deeponet import DeepONetConfig
    from oplearn.models.local_fno import LocalFNOConfig
    from oplearn.models.resnet import ResNetConfig
    from oplearn.models.tfno import TFNOConfig
    from oplearn.models.unet import UNetConfig
    from oplearn.models.uno import UNOConfig

    return (FNOConfig, TFNOConfig, UNOConfig, LocalFNOConfig, UNetConfig, DeepONetConfig, ResNetConfig)


ModelConfig = Annotated[Union[_model_configs()], Field(discriminator="name")]


class TrainConfig(Strict):
    """Optimisation: AdamW with a cosine or step learning-rate schedule.

    ``accumulate`` splits each batch (``data.batch_size``, the global batch) into that many
    micro-batches whose gradients are summed before the step: the same update with less
    memory. ``precision`` selects autocast mixed precision for the forward pass (``bf16`` on CPU or
    GPU, ``fp16`` with loss scaling on CUDA only); spectral layers keep their FFTs in
    float32 and the loss is computed in float32.

    ``task`` names what is learned (:data:`oplearn.training.tasks.TASKS`): ``map`` learns the
    stored outputs from the inputs (trajectories folded into channels); ``one_step`` learns the
    next frame of trajectories from the last ``history`` frames, training each step after
    ``pushforward`` unrolled steps without gradient (:mod:`oplearn.training.rollout`).

    ``physics`` adds a physics-informed loss to the ``map`` task (:class:`oplearn.physics.PhysicsConfig`).
    """

    epochs: int = Field(default=100, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    scheduler: Literal["cosine", "step", "constant"] = "cosine"
    step_size: int = Field(default=50, gt=0)
    gamma: float = Field(default=0.5, gt=0)
    loss: Literal["relative_l2", "relative_h1"] = "relative_l2"
    positional_features: bool = True
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    accumulate: int = Field(default=1, gt=0)
    checkpoint_every: int = Field(default=1, gt=0)
    device: str = "auto"
    threads: int | None = Field(default=None, gt=0)
    task: str = "map"
    history: int = Field(default=1, gt=0)
    pushforward: int = Field(default=0, ge=0)
    physics: PhysicsConfig | None = None

    @field_validator("task")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from oplearn.training.tasks import TASKS

        if name not in TASKS:
            raise ValueError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
        return name


class RunConfig(Strict):
    """Everything that defines a training run."""

    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=FNOConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    wos: WoSConfig | None = None
    diffusion: DiffusionConfig | None = None

    @model_validator(mode="after")
    def _task_sections(self) -> "RunConfig":
        from oplearn.training.tasks import task_class

        task = self.train.task
        if self.data.path is None and task_class(task).data_file:
            raise ValueError(f"missing required key 'data.path' (train.task={task} learns from a dataset file)")
        if self.wos is not None and task != "wos":
            raise ValueError(f"the wos section configures train.task=wos, but train.task is {task}")
        if self.diffusion is not None and task != "diffusion":
            raise ValueError(f"the diffusion section configures train.task=diffusion, but train.task is {task}")
        if task == "diffusion" and self.data.test:
            raise ValueError("data.test lists files to evaluate an operator on; a diffusion prior (train.task=diffusion) "
                             "has none: remove data.test")
        return self

    @model_validator(mode="after")
    def _deeponet_needs_coordinates(self) -> "RunConfig":
        if self.model.name == "deeponet" and not self.train.positional_features:
            raise ValueError("model deeponet evaluates its trunk at the coordinate channels: keep train.positional_features=true")
        return self

    @model_validator(mode="after")
    def _physics_needs_pde_inputs(self) -> "RunConfig":
        if self.train.physics is not None and (self.train.task != "map" or self.data.input_frames is not None):
            raise ValueError("train.physics needs train.task=map with the PDE's own inputs (no data.input_frames)")
        return self


def _format_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    first = err.errors()[0]
    configs = {c.model_fields["name"].default: c for c in _model_configs()}
    path = [p for p in first["loc"] if p not in configs]
    key = ".".join(map(str, path))
    if first["type"] == "extra_forbidden":
        known = _known_keys(model, first["loc"][:-1], configs)
        hint = difflib.get_close_matches(str(path[-1]), known, n=1)
        suggestion = f" (did you mean '{'.'.join([*map(str, path[:-1]), hint[0]])}'?)" if hint else ""
        return f"config: unknown key '{key}'{suggestion}"
    if first["type"] == "union_tag_invalid":
        ctx = first.get("ctx", {})
        return f"config: key '{key}.name': unknown choice {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
    if first["type"] == "missing":
        return f"config: missing required key '{key}'"
    if not path:  # a check across sections
        return f"config: {first['msg'].removeprefix('Value error, ')}"
    return f"config: key '{key}': {first['msg']} (got {str(first.get('input'))[:80]!r})"


def _known_keys(model: type[BaseModel], loc: tuple, configs: dict[str, type[BaseModel]]) -> list[str]:
    """The keys allowed at ``loc`` (a pydantic error location; model tags select the model)."""
    for part in loc:
        if part in configs:
            model = configs[part]
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            model = nested[0]
    return list(model.model_fields)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into the key path and the YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value (e.g. --set train.epochs=10)")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        value = float(value)  # YAML 1.1 reads 1e-4 (no decimal point) as text
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set dotted keys in a nested dict (creating sections as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override '{text}': '{part}' is a value, not a section")
            node = child
        node[path[-1]] = value
    return raw


def validate_config(raw: dict) -> RunConfig:
    """Validate a plain dict into a :class:`RunConfig`, raising a one-line ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping of sections (seed, data, model, train)")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, RunConfig)) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config file and apply ``key=value`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(err).splitlines()[0]}") from None
    return validate_config(apply_overrides(raw, list(overrides)))


def dump_config(config: RunConfig) -> str:
    """The fully resolved configuration as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
