"""What oplearn offers, listed for a newcomer: ``oplearn list`` and ``oplearn config``.

``oplearn list [pdes|models|tasks|configs|formats]`` prints the PDE families with their
parameters and defaults, the models with their config keys and defaults, the training tasks,
the shipped configs and the layouts ``oplearn convert`` reads, all from the registries
themselves (:data:`oplearn.pdes.PDES`, :data:`oplearn.config.MODEL_CONFIGS`,
:data:`oplearn.training.tasks.TASKS`, :func:`oplearn.config.shipped_configs`,
:data:`oplearn.data.convert.LAYOUTS`), so the listing never drifts from the code.
``oplearn config NAME`` prints a shipped config (with ``--set`` or ``--resolved``: the fully
resolved config, every default written out), to start one's own:
``oplearn config darcy_fno --set model.name=unet > darcy_unet.yaml``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
from typing import Any

from pydantic import BaseModel


def _plain(text: str) -> str:
    """reStructuredText roles and literals as plain text: ``:math:`a^2``` -> ``a^2``."""
    return re.sub(r"``([^`]*)``", r"\1", re.sub(r":\w+:`~?([^`]*)`", r"\1", text))


def _first_line(doc: str | None) -> str:
    return _plain(doc.strip().splitlines()[0].rstrip(".")) if doc and doc.strip() else ""


def _first_sentence(lines: list[str], limit: int = 160) -> str:
    text = ""
    for line in lines:
        text = f"{text} {line}".strip()
        if text.endswith(".") or len(text) > limit:
            break
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _value(value: Any) -> str:
    return "required" if value is ... else repr(value) if isinstance(value, str) else str(value)


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """``key=default`` for every field of a config class (nested sections flattened with dots)."""
    out = []
    for name, info in model.model_fields.items():
        if name == "name":
            continue
        nested = (
            info.annotation if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel) else None
        )
        if nested is not None:
            out += _keys(nested, f"{prefix}{name}.")
        else:
            default = info.get_default(call_default_factory=True) if not info.is_required() else ...
            out.append(f"{prefix}{name}={_value(default)}")
    return out


def list_pdes() -> list[str]:
    from oplearn.pdes import PDES

    lines = ["PDE families (oplearn generate NAME --param KEY=VALUE):"]
    for name, cls in PDES.items():
        kind = "time-dependent" if cls().times is not None else "steady"
        lines.append(
            f"  {name:<20} {_first_line(cls.__doc__)} ({cls.ndim}D, {'periodic' if cls.periodic else 'bounded'}, {kind})"
        )
        lines.append("      parameters: " + ", ".join(f"{k}={_value(d)}" for k, (_, d) in cls.parameters().items()))
    return lines


def list_models() -> list[str]:
    from oplearn.config import MODEL_CONFIGS

    lines = ["Models (model.name in a config, or --set model.name=NAME; keys as model.KEY):"]
    for name, cls in MODEL_CONFIGS.items():
        lines.append(f"  {name:<12} {_first_line(cls.__doc__)} [{cls.kind} model]")
        lines.append("      keys: " + ", ".join(_keys(cls)))
    return lines


def list_tasks() -> list[str]:
    from oplearn.config import MODEL_CONFIGS
    from oplearn.training.tasks import TASKS, task_class

    lines = ["Training tasks (train.task):"]
    for name in TASKS:
        task = task_class(name)
        models = [m for m, c in MODEL_CONFIGS.items() if c.kind in task.model_kinds]
        network = (
            f"models: {', '.join(models)} (default {task.default_model})"
            if models
            else f"network configured in its '{task.config_section}' section"
        )
        data = "learns from data.path" if task.data_file else "draws its own problems"
        section = f"; section '{task.config_section}'" if task.config_section else ""
        lines.append(f"  {name:<12} {_first_line(task.__doc__)}")
        lines.append(f"      {data}; {network}{section}")
    return lines


def list_configs() -> list[str]:
    from oplearn.config import shipped_configs

    lines = ["Shipped configs (oplearn train NAME --out RUN, oplearn config NAME):"]
    for name, path in shipped_configs().items():
        comments = [line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        lines.append(f"  {name:<18} {_first_sentence(comments)}")
    return lines


def list_formats() -> list[str]:
    from oplearn.data.convert import LAYOUTS

    lines = ["Data layouts (oplearn convert IN OUT.h5; train and evaluate read them directly too):"]
    lines += [f"  {name:<16} {layout.summary}" for name, layout in LAYOUTS.items()]
    return lines


def _arguments(defaults: dict[str, Any]) -> str:
    """``key=default`` of keyword arguments (``key`` alone when required)."""
    out = [name if value is inspect.Parameter.empty else f"{name}={_value(value)}" for name, value in defaults.items()]
    return ", ".join(out) or "none"


def _constructor_defaults(cls: type) -> dict[str, Any]:
    """A constructor's keyword arguments with their defaults."""
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def list_kolmogorov() -> list[str]:
    from oplearn.kolmogorov.losses import LOSSES
    from oplearn.kolmogorov.problems import PROBLEMS

    lines = ["Kolmogorov problems (train.task=kolmogorov: kolmogorov.problem, kolmogorov.problem_params):"]
    for name, cls in PROBLEMS.items():
        lines.append(f"  {name:<26} {_first_line(cls.__doc__)}")
        lines.append("      parameters: " + _arguments(_constructor_defaults(cls)))
    lines.append("  losses (kolmogorov.loss): " + ", ".join(LOSSES))
    return lines


def list_sampling() -> list[str]:
    from oplearn.sampling.losses import LOSSES
    from oplearn.sampling.methods import METHODS, method_defaults
    from oplearn.sampling.targets import TARGETS

    lines = ["Sampling targets (train.task=sampler: sampling.target, sampling.target_params):"]
    for name, cls in TARGETS.items():
        lines.append(f"  {name:<22} {_first_line(cls.__doc__)}")
        lines.append("      parameters: " + _arguments(_constructor_defaults(cls)))
    lines.append("Sampling methods (sampling.method, sampling.method_params):")
    for name, cls in METHODS.items():
        if isinstance(cls, functools.partial):
            fixed = ", ".join(f"{k}={_value(v)}" for k, v in cls.keywords.items())
            lines.append(f"  {name:<22} {_first_line(cls.func.__doc__)} ({fixed})")
        else:
            lines.append(f"  {name:<22} {_first_line(cls.__doc__)}")
        lines.append("      parameters: " + _arguments(method_defaults(cls)))
    lines.append("  losses (sampling.loss): " + ", ".join(LOSSES))
    return lines


SECTIONS = {
    "pdes": list_pdes,
    "models": list_models,
    "tasks": list_tasks,
    "configs": list_configs,
    "formats": list_formats,
    "kolmogorov": list_kolmogorov,
    "sampling": list_sampling,
}


def _list_command(args: argparse.Namespace) -> None:
    names = [args.what] if args.what else list(SECTIONS)
    print("\n\n".join("\n".join(SECTIONS[name]()) for name in names))


def _config_command(args: argparse.Namespace) -> None:
    from oplearn.config import config_path, dump_config, load_config

    if args.set or args.resolved:
        print(dump_config(load_config(args.name, args.set)), end="")
    else:
        print(config_path(args.name).read_text(), end="")


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``oplearn list`` and ``oplearn config``."""
    p = sub.add_parser(
        "list",
        help="list the PDEs (with parameters), models (with keys), tasks, shipped configs, data layouts, "
        "Kolmogorov problems and sampling targets and methods",
    )
    p.add_argument("what", nargs="?", choices=tuple(SECTIONS), help="one section (default: all)")
    p.set_defaults(func=_list_command)

    p = sub.add_parser(
        "config",
        help="print a shipped config, or a resolved one with every default",
        description="Print a shipped config (oplearn list configs) or a config file. With --set or "
        "--resolved, print the fully resolved config: e.g. 'oplearn config darcy_fno --set model.name=unet "
        "> darcy_unet.yaml' starts a U-Net config with all of its defaults.",
    )
    p.add_argument("name", metavar="CONFIG", help="a shipped config's name (e.g. darcy_fno) or a YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key (repeatable)")
    p.add_argument("--resolved", action="store_true", help="print every key with its default")
    p.set_defaults(func=_config_command)
