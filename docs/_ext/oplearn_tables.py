"""Tables of the user guide computed from oplearn's registries while the site is built.

``.. oplearn-table:: pdes`` (PDE families and their parameters), ``models`` (config keys,
parameter count of a default 2D build, and whether a model built on one grid runs on
another, found by running it), ``tasks``, ``configs`` and ``layouts``. Being computed, they
cannot disagree with the code.
"""

from __future__ import annotations

import time
from typing import ClassVar

import torch
from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

from oplearn.catalog import _first_sentence, _keys, _plain, _value

#: Grid of the models table: built for 32 x 32, also run on 48 x 48 (resolution behaviour).
TRAIN_GRID, OTHER_GRID = 32, 48


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def _summary(doc: str | None) -> str:
    """The first sentence of a docstring, as plain text."""
    lines = [_plain(line.strip()) for line in (doc or "").strip().splitlines()]
    return _text(_first_sentence(lines, limit=200))


def _text(text: str) -> str:
    """Plain text as reStructuredText: ``*`` and backquotes are not markup."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`")


def _list_table(header: list[str], rows: list[list[str]], widths: str | None = None) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1"] + ([f"   :widths: {widths}"] if widths else []) + [""]
    for row in [header, *rows]:
        lines.append(f"   * - {_cell(row[0])}")
        lines += [f"     - {_cell(cell)}" for cell in row[1:]]
    return lines


def pde_rows() -> list[list[str]]:
    from oplearn.pdes import PDES, MeshPDE

    rows = []
    for name, cls in PDES.items():
        pde = cls()
        kind = "time-dependent" if getattr(pde, "times", None) is not None else "steady"
        domain = "irregular domain (mesh)" if issubclass(cls, MeshPDE) else "periodic box" if cls.periodic else "box"
        params = ", ".join(f"``{k}={_value(d)}``" for k, (_, d) in cls.parameters().items())
        rows.append(
            [f"``{name}``", f":class:`~{cls.__module__}.{cls.__qualname__}`", f"{cls.ndim}D, {domain}, {kind}", params]
        )
    return rows


def _grid_behaviour(config) -> tuple[torch.nn.Module, str, float]:
    """The default 2D model, its resolution behaviour and forward time (ms, batch 4, one thread)."""

    torch.manual_seed(0)
    try:
        channels = 1
        model = config.build(channels, 1, 2, (TRAIN_GRID, TRAIN_GRID)).eval()
    except ValueError:  # a model that needs the coordinates as channels (train.positional_features)
        channels = 3
        model = config.build(channels, 1, 2, (TRAIN_GRID, TRAIN_GRID)).eval()
    x = torch.randn(4, channels, TRAIN_GRID, TRAIN_GRID)
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        model(x)
        ms = 1e3 * (time.perf_counter() - start)
        try:
            y = model(torch.randn(1, channels, OTHER_GRID, OTHER_GRID))
            ok = tuple(y.shape[-2:]) == (OTHER_GRID, OTHER_GRID)
        except (ValueError, RuntimeError):
            ok = False
    behaviour = "any grid (built on 32², runs on 48²)" if ok else "its training grid only (fails on 48²)"
    return model, behaviour, ms


#: Input features of the flat-vector networks in the table (t, a 10-dimensional x, one parameter).
MLP_FEATURES = 12


def model_rows() -> list[list[str]]:
    from oplearn.config import MODEL_CONFIGS
    from oplearn.models import count_parameters

    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, cls in MODEL_CONFIGS.items():
            config = cls()
            if cls.kind == "grid":
                model, behaviour, ms = _grid_behaviour(config)
                speed = f"{ms:.1f}"
            elif cls.kind == "mlp":
                model = config.build(MLP_FEATURES)
                behaviour, speed = (
                    f"flat vectors ``(t, x, params)`` (``train.task=kolmogorov``; built for {MLP_FEATURES})",
                    "n/a",
                )
            else:
                model = config.build(1, 1, ((0.0, 1.0), (0.0, 1.0)))
                behaviour, speed = "any point cloud or mesh (``train.task=points``)", "n/a"
            keys = ", ".join(f"``{k}``" for k in _keys(cls))
            built = type(model)
            constructor = f":class:`~{built.__module__}.{built.__qualname__}`: {_summary(cls.__doc__)}"
            rows.append([f"``{name}``", constructor, keys, f"{count_parameters(model):,}", behaviour, speed])
    finally:
        torch.set_num_threads(threads)
    return rows


def task_rows() -> list[list[str]]:
    from oplearn.training.tasks import TASKS, task_class

    rows = []
    for name in TASKS:
        task = task_class(name)
        source = "``data.path``" if task.data_file else "draws its own problems"
        section = f"``{task.config_section}``" if task.config_section else ""
        rows.append(
            [
                f"``{name}``",
                f":class:`~{task.__module__}.{task.__qualname__}`",
                _summary(task.__doc__),
                source,
                section,
            ]
        )
    return rows


def config_rows() -> list[list[str]]:
    from oplearn.config import shipped_configs

    rows = []
    for name, path in shipped_configs().items():
        comments = [line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        rows.append([f"``{name}``", _text(_first_sentence(comments))])
    return rows


def layout_rows() -> list[list[str]]:
    from oplearn.data.convert import LAYOUTS

    return [[f"``{name}``", _text(layout.summary)] for name, layout in LAYOUTS.items()]


TABLES = {
    "pdes": (["name", "class", "kind", "parameters (``--param KEY=VALUE``) with defaults"], pde_rows, "12 20 20 48"),
    "models": (
        [
            "``model.name``",
            "model (its constructor)",
            "config keys (``model.KEY``) with defaults",
            "parameters (2D, 1→1 channel)",
            "resolution",
            "forward ms (4×1×32², 1 thread)",
        ],
        model_rows,
        "8 18 34 10 18 12",
    ),
    "tasks": (["``train.task``", "class", "learns", "data", "config section"], task_rows, "10 25 35 15 15"),
    "configs": (["config", "what it trains"], config_rows, "20 80"),
    "layouts": (["layout", "what ``oplearn convert`` reads"], layout_rows, "20 80"),
}


class OplearnTable(Directive):
    """``.. oplearn-table:: NAME``: one of :data:`TABLES`, computed now."""

    required_arguments = 1
    option_spec: ClassVar[dict] = {"caption": directives.unchanged}

    def run(self):
        header, rows, widths = TABLES[self.arguments[0]]
        text = _list_table(header, rows(), widths)
        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(text, source="oplearn-table"), container)
        return container.children


def setup(app):
    app.add_directive("oplearn-table", OplearnTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
