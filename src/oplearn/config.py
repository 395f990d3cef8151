"""Typed, validated run configuration.

A run is described by one YAML file (see ``configs/``) plus ``--set key=value``
overrides with dotted keys. Unknown keys and wrong types are reported as one line that
names the key. The fully resolved configuration is saved in the run directory.
"""

from __future__ import annotations

import difflib
import importlib
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from oplearn.errors import ConfigError
from oplearn.physics import PhysicsConfig
from oplearn.schema import ModelSpec, Strict

_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
# the names pydantic gives the branches of a union in an error's location (not config keys)
_UNION_BRANCH = re.compile(r"int|float|str|bool|none|constrained-\w+|[\w-]+\[.*\]")
_FLOW_COLON = re.compile(r":(?=[^\s/\\])")  # a colon glued to its value in a flow mapping


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


#: Modules that contribute to the run configuration. Each defines ``SECTIONS`` (a dict: the
#: name of a top-level config section owned by a task -> its config class) and/or ``MODELS`` (a
#: tuple of model config classes, each with a ``name`` literal). A new capability adds its
#: light config module here; the run config is assembled from them.
CONFIG_MODULES: tuple[str, ...] = (
    "oplearn.models.fno",
    "oplearn.models.tfno",
    "oplearn.models.uno",
    "oplearn.models.local_fno",
    "oplearn.models.unet",
    "oplearn.models.deeponet",
    "oplearn.models.resnet",
    "oplearn.wos.config",
    "oplearn.diffusion.config",
    # point clouds and meshes (train.task=points)
    "oplearn.models.gino",
    "oplearn.models.mollified_gno",
    "oplearn.geometry.config",
    "oplearn.sampling.config",
    # Kolmogorov PDEs through SDEs (train.task=kolmogorov)
    "oplearn.models.mlp",
    "oplearn.kolmogorov.config",
    # the sphere (extra sphere)
    "oplearn.models.sfno",
    "oplearn.training.long_rollout_config",
)


def _contributions(attribute: str) -> list:
    found = []
    for module in CONFIG_MODULES:
        value = getattr(importlib.import_module(module), attribute, None)
        if value is not None:
            found.extend(value.items() if isinstance(value, dict) else value)
    return found


#: Every model's config class by ``model.name`` (each lives beside its model).
MODEL_CONFIGS: dict[str, type[ModelSpec]] = {c.model_fields["name"].default: c for c in _contributions("MODELS")}
#: Config sections owned by tasks (``Task.config_section``), by section name.
TASK_SECTIONS: dict[str, type[Strict]] = dict(_contributions("SECTIONS"))

AnyModelConfig = Annotated[Union[tuple(MODEL_CONFIGS.values())], Field(discriminator="name")]  # noqa: UP007 (a union built at run time)


class TrainConfig(Strict):
    r"""Optimisation: AdamW with a cosine or step learning-rate schedule.

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

    ``tensorboard: true`` also writes each epoch's record as TensorBoard scalars in
    ``RUN/tensorboard/`` (:mod:`oplearn.training.tensorboard`; the extra ``oplearn[tensorboard]``).
    ``clip_grad_norm`` rescales each step's gradient to at most that Euclidean norm (none by default).
    ``ema_decay`` keeps an exponential moving average of the weights, which validation,
    checkpoints, evaluation and rollouts use (:mod:`oplearn.training.averaging`; none by default).
    ``target: increment`` makes a ``one_step`` model predict the frame increment
    :math:`u(t + \Delta t) - u(t)` (output normaliser fitted on the training increments) and add it
    to the last frame; ``loss: mse`` is the mean square error in units of the output
    normaliser's standard deviation (with ``target: increment``, PDE-Refiner's step-0 objective).
    ``mode_projection`` projects each predicted frame of a time-stepping task (``one_step``,
    ``refiner``) onto the Fourier modes the training frames hold (:mod:`oplearn.layers.projection`;
    periodic data).
    """

    epochs: int = Field(default=100, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    scheduler: Literal["cosine", "step", "constant"] = "cosine"
    step_size: int = Field(default=50, gt=0)
    gamma: float = Field(default=0.5, gt=0)
    loss: Literal["relative_l2", "relative_h1", "mse"] = "relative_l2"
    target: Literal["frame", "increment"] = "frame"
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
    tensorboard: bool = False
    clip_grad_norm: float | None = Field(default=None, gt=0)
    ema_decay: float | None = Field(default=None, gt=0, lt=1)
    mode_projection: bool = False

    @field_validator("task")
    @classmethod
    def _known_task(cls, name: str) -> str:
        from oplearn.training.tasks import TASKS

        if name not in TASKS:
            raise ValueError(f"unknown task '{name}'; choose one of {', '.join(TASKS)}")
        return name


class _RunConfigBase(Strict):
    """Everything that defines a training run.

    ``seed``, ``data``, ``model`` and ``train`` are common to all tasks; each task may own
    one further section (``Task.config_section``, the classes of :data:`TASK_SECTIONS`),
    e.g. ``wos`` or ``diffusion``. ``model`` defaults to the task's default model and is
    absent for tasks whose network is configured in their own section.
    """

    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    model: AnyModelConfig | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="before")
    @classmethod
    def _task_model(cls, raw: Any) -> Any:
        """Fill in the task's default model; drop the FNO defaults that configs of model-less tasks
        saved by earlier versions carry."""
        if not isinstance(raw, dict):
            return raw
        default = _default_model(raw)
        model = raw.get("model")
        if model is None and default is not None:
            return {**raw, "model": {"name": default}}
        if isinstance(model, dict) and "name" not in model and default is not None:
            return {**raw, "model": {"name": default, **model}}
        if default is None and model == MODEL_CONFIGS["fno"]().model_dump(mode="json"):
            return {key: value for key, value in raw.items() if key != "model"}
        return raw

    @model_validator(mode="after")
    def _fits_the_task(self) -> _RunConfigBase:
        from oplearn.training.tasks import TASKS, OneStepTask, task_class

        name = self.train.task
        task = task_class(name)
        if self.data.path is None and task.data_file:
            raise ValueError(f"missing required key 'data.path' (train.task={name} learns from a dataset file)")
        for section in TASK_SECTIONS:
            if getattr(self, section) is not None and section != task.config_section:
                owners = [t for t in TASKS if task_class(t).config_section == section]
                raise ValueError(
                    f"the {section} section configures train.task={' or '.join(owners)}, but train.task "
                    f"is {name}: remove the section or set train.task"
                )
        if self.model is not None and self.model.kind not in task.model_kinds:
            if not task.model_kinds:
                raise ValueError(
                    f"train.task={name} configures its network in its own section; remove the model section"
                )
            fitting = [m for m, c in MODEL_CONFIGS.items() if c.kind in task.model_kinds]
            raise ValueError(
                f"model '{self.model.name}' ({self.model.kind} model) does not fit train.task={name}; "
                f"choose one of: {', '.join(fitting)}"
            )
        if (self.train.target != "frame" or self.train.loss == "mse") and name != "one_step":
            raise ValueError(
                f"train.target=increment and train.loss=mse are options of train.task=one_step, not {name}; remove them"
            )
        if self.train.mode_projection and not issubclass(task, OneStepTask):
            raise ValueError(
                f"train.mode_projection projects the predicted frames of time-stepping tasks "
                f"(one_step, refiner, coarse_graining), not train.task={name}; remove it"
            )
        task.check_config(self)
        return self

    @model_validator(mode="after")
    def _deeponet_needs_coordinates(self) -> _RunConfigBase:
        if self.model is not None and self.model.name == "deeponet" and not self.train.positional_features:
            raise ValueError(
                "model deeponet evaluates its trunk at the coordinate channels: keep train.positional_features=true"
            )
        return self

    @model_validator(mode="after")
    def _physics_needs_pde_inputs(self) -> _RunConfigBase:
        if self.train.physics is not None and (self.train.task != "map" or self.data.input_frames is not None):
            raise ValueError("train.physics needs train.task=map with the PDE's own inputs (no data.input_frames)")
        return self


RunConfig = create_model(
    "RunConfig",
    __base__=_RunConfigBase,
    __module__=__name__,
    **{name: (section | None, None) for name, section in TASK_SECTIONS.items()},
)
RunConfig.__doc__ = _RunConfigBase.__doc__


def _format_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    first = err.errors()[0]
    configs = MODEL_CONFIGS
    path = [p for p in first["loc"] if p not in configs and not _UNION_BRANCH.fullmatch(str(p))]
    key = ".".join(map(str, path))
    if first["type"] == "extra_forbidden":
        known = _known_keys(model, first["loc"][:-1], configs)
        hint = difflib.get_close_matches(str(path[-1]), known, n=1)
        suggestion = f" (did you mean '{'.'.join([*map(str, path[:-1]), hint[0]])}'?)" if hint else ""
        tags = [part for part in first["loc"] if part in configs]
        if tags and len(path) == 2 and path[0] == "model":  # a key of the model section itself
            suggestion += f"; model '{tags[-1]}' takes: {', '.join(k for k in known if k != 'name')}"
        return f"config: unknown key '{key}'{suggestion}"
    if first["type"] == "union_tag_invalid":
        ctx = first.get("ctx", {})
        return (
            f"config: key '{key}.name': unknown choice {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
        )
    if first["type"] == "missing":
        return f"config: missing required key '{key}'"
    if first["type"] in ("model_type", "model_attributes_type", "dict_type"):
        given = first.get("input")
        hint = f" (--set model.name={given} switches the model)" if key == "model" and given in configs else ""
        return f"config: '{key}' is a section, not a value (got {str(given)[:80]!r}); set its keys as {key}.KEY=VALUE{hint}"
    if not path:  # a check across sections
        return f"config: {first['msg'].removeprefix('Value error, ')}"
    return f"config: key '{key}': {first['msg'].removeprefix('Value error, ')} (got {str(first.get('input'))[:80]!r})"


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
        nested = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
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
        if isinstance(value, dict) and any(v is None and ":" in str(k) for k, v in value.items()):
            value = yaml.safe_load(_FLOW_COLON.sub(": ", raw))  # {name:unet} means {name: unet}
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        value = float(value)  # YAML 1.1 reads 1e-4 (no decimal point) as text
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set dotted keys in a nested dict (creating sections as needed); a number indexes a list
    (``data.test.0.generate.n=8`` sets the first test file's sample count)."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for i, part in enumerate(path[:-1]):
            node = _child(node, part, text, ".".join(path[:i]))
        if isinstance(node, list):
            node[_index(node, path[-1], text, ".".join(path[:-1]))] = value
        else:
            node[path[-1]] = value
    return raw


def _child(node: dict | list, part: str, text: str, where: str) -> dict | list:
    if isinstance(node, list):
        child = node[_index(node, part, text, where)]
    else:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
    if not isinstance(child, (dict, list)):
        raise ConfigError(f"override '{text}': '{part}' is a value, not a section")
    return child


def _index(node: list, part: str, text: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        valid = f"0 to {len(node) - 1}" if node else "an empty list"
        raise ConfigError(f"override '{text}': '{part}' is not an index of {where}, {valid}")
    return int(part)


def validate_config(raw: dict) -> RunConfig:
    """Validate a plain dict into a :class:`RunConfig`, raising a one-line ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping of sections (seed, data, model, train)")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, RunConfig)) from None


def shipped_configs() -> dict[str, Path]:
    """The configs installed with oplearn (``configs/`` of the source tree), by name."""
    folder = Path(str(resources.files("oplearn").joinpath("configs")))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def config_path(name: str | Path) -> Path:
    """A config file: ``name`` itself when it exists, else the shipped config of that name
    (``darcy_fno`` or ``darcy_fno.yaml``). One-line ConfigError when neither exists."""
    path = Path(name)
    if path.is_dir():
        raise ConfigError(f"config file '{path}' is a folder; give a YAML file")
    if path.is_file():
        return path
    shipped = shipped_configs()
    if path.parent == Path(".") and path.name.removesuffix(".yaml") in shipped:
        return shipped[path.name.removesuffix(".yaml")]
    raise ConfigError(
        f"config file '{path}' does not exist; shipped configs: {', '.join(shipped)} (oplearn config NAME prints one)"
    )


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config file (or a shipped config by name, :func:`config_path`) and apply
    ``key=value`` overrides."""
    path = config_path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file '{path}' must be a mapping of sections (seed, data, model, train)")
    return validate_config(apply_overrides(_switch_model(raw, overrides), list(overrides)))


def _switch_model(raw: dict, overrides: list[str]) -> dict:
    """``--set model.name=X`` naming another model than the file's: start from X's defaults (the
    file's keys belong to its own model); later ``model.*`` overrides apply on top."""
    section = raw.get("model")
    if not isinstance(section, dict):
        return raw
    current = section.get("name", _default_model(raw))
    for text in overrides:
        path, value = parse_override(text)
        if path == ["model", "name"] and value != current:
            return {**raw, "model": {}}
    return raw


def _default_model(raw: dict) -> str | None:
    """The default model of the task a raw config names (``None`` for an unknown task)."""
    from oplearn.training.tasks import TASKS, task_class

    train = raw.get("train")
    name = train.get("task", "map") if isinstance(train, dict) else "map"
    return task_class(name).default_model if name in TASKS else None


def dump_config(config: RunConfig) -> str:
    """The fully resolved configuration as YAML."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
