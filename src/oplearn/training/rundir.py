"""A run directory and what it holds, for everything that reads a finished or running run.

Layout
------
- ``config.yaml``: the fully resolved configuration
- ``metrics.jsonl``: one JSON line per epoch (losses, validation metrics, lr, seconds)
- ``checkpoints/last.pt``: model, optimiser, scheduler, RNG state and epoch (for ``--resume``)
- ``checkpoints/best.pt``: the model with the lowest validation relative L2
- ``run.json``: how it ran: task, model, parameters, versions, and one entry per training
  session (start time, device, processes, epochs, seconds)
- ``metrics.json``: test metrics, one row per evaluated dataset or estimate (``evaluate``
  merges new rows by their ``key``)
- ``report/``: ``report.html``, ``report.md`` and figures (``oplearn report``)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from oplearn.config import RunConfig, validate_config
from oplearn.errors import OplearnError
from oplearn.training.checkpoint import load_checkpoint
from oplearn.training.tasks import Task, rebuild_model, task_class

CONFIG_FILE = "config.yaml"
LOG_FILE = "metrics.jsonl"
META_FILE = "run.json"
METRICS_FILE = "metrics.json"
LAST = Path("checkpoints") / "last.pt"
BEST = Path("checkpoints") / "best.pt"


def write_json(path: Path, value: Any) -> Path:
    """Write ``value`` as indented JSON to ``path`` atomically (a hidden temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def read_log(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (empty when there are none)."""
    path = Path(run_dir) / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_results(run_dir: str | Path) -> list[dict]:
    """The rows of ``metrics.json`` (empty before any evaluation)."""
    path = Path(run_dir) / METRICS_FILE
    return json.loads(path.read_text()).get("results", []) if path.exists() else []


@dataclass
class Run:
    """A trained (or training) run, loaded from its directory by :func:`open_run`.

    Attributes
    ----------
    dir : the run directory
    config : its resolved configuration
    task : the task class that trained it (``train.task``)
    model : the loaded model (best checkpoint, else last), in eval mode on the CPU
    info : what the task recorded about its data (``Task.info``), e.g. channels and grid
    epoch : the epoch of the loaded checkpoint
    scratch : results a task's ``evaluate`` computed that its ``report`` reuses in the same process
        (e.g. drawn samples), so that a report does not compute them twice
    """

    dir: Path
    config: RunConfig
    task: type[Task]
    model: nn.Module
    info: dict
    epoch: int
    scratch: dict = field(default_factory=dict)

    def log(self) -> list[dict]:
        """The per-epoch records of ``metrics.jsonl``."""
        return read_log(self.dir)

    def meta(self) -> dict:
        """``run.json`` (empty for runs made before it existed)."""
        path = self.dir / META_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def results(self) -> list[dict]:
        """The rows of ``metrics.json`` (empty before any evaluation)."""
        return read_results(self.dir)


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """The checkpoint to load: ``best`` (falling back to ``last``) or ``last``; one-line errors
    for a missing directory or an empty one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is a file, not a run directory" if run_dir.exists() else "does not exist"
        raise OplearnError(f"run directory '{run_dir}' {what}; train one with 'oplearn train CONFIG --out {run_dir}'")
    path = run_dir / (BEST if which == "best" and (run_dir / BEST).exists() else LAST)
    if not path.exists():
        raise OplearnError(f"'{run_dir}' holds no checkpoint ({LAST}); is it a run directory of 'oplearn train'?")
    return path


def model_from_checkpoint(state: dict) -> tuple[nn.Module, RunConfig]:
    """Rebuild the model saved in a checkpoint (last or best)."""
    config = validate_config(json.loads(state["config"]))
    model = rebuild_model(config, state["data"])
    model.load_state_dict(state["model"])
    return model.eval(), config


def open_run(run_dir: str | Path, which: str = "best") -> Run:
    """The run in ``run_dir`` with its ``which`` model (``best`` falls back to ``last``)."""
    state = load_checkpoint(checkpoint_path(run_dir, which))
    model, config = model_from_checkpoint(state)
    return Run(
        Path(run_dir), config, task_class(config.train.task), model, json.loads(state["data"]), int(state["epoch"])
    )
