"""Evaluate a trained operator on dataset files, at any resolution."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from oplearn.data.files import FieldData, load_fields
from oplearn.errors import DataError, OplearnError
from oplearn.metrics import evaluate_metrics, per_time_step, relative_l2
from oplearn.models.operator import OperatorModel
from oplearn.training.rollout import full_trajectory
from oplearn.training.run import load_run
from oplearn.training.tasks import map_view, predict, predict_rollout

METRICS_FILE = "metrics.json"


def check_compatible(model: OperatorModel, data: FieldData) -> None:
    """Raise a one-line DataError if ``data`` cannot be fed to ``model``."""
    where = str(data.path)
    if data.grid.ndim != model.ndim:
        raise DataError(f"{where}: data is {data.grid.ndim}D but the model was trained on {model.ndim}D fields")
    if data.grid.periodic != model.periodic or data.grid.domain != model.domain:
        raise DataError(
            f"{where}: the data grid (domain {data.grid.domain}, periodic={data.grid.periodic}) differs from the "
            f"training grid (domain {model.domain}, periodic={model.periodic})"
        )
    if data.inputs.shape[1] != model.in_channels or data.outputs.shape[1] != model.out_channels:
        raise DataError(
            f"{where}: data has {data.inputs.shape[1]} input / {data.outputs.shape[1]} output channels; the model "
            f"maps {model.in_channels} to {model.out_channels}"
        )


def evaluate_fields(model: OperatorModel, data: FieldData, batch_size: int = 32, device: str | torch.device = "cpu") -> tuple[dict, torch.Tensor]:
    """Metrics of ``model`` on ``data`` (sample means) and the predictions ``(n, c_out, *spatial)``."""
    check_compatible(model, data)
    try:
        pred = predict(model.to(device), data.inputs, batch_size, torch.device(device))
    except ValueError as err:
        raise DataError(f"{data.path}: {err}") from None
    return evaluate_metrics(pred, data.outputs, data.grid), pred


def evaluate_rollout(
    model: OperatorModel, data: FieldData, history: int, batch_size: int = 32, device: str | torch.device = "cpu"
) -> tuple[dict, list[float], torch.Tensor]:
    """Metrics of a one-step ``model`` rolled out over ``data``'s trajectories from their first
    ``history`` frames: sample-and-step means, the relative L2 of each step (sample means)
    and the predictions ``(n, T + 1 - history, C, *spatial)`` of frames ``history .. T``."""
    where = str(data.path)
    try:
        trajectory = full_trajectory(data.inputs, data.outputs, data.time)
    except ValueError as err:
        raise DataError(f"{where}: {err}") from None
    check_compatible(model, FieldData(trajectory[:, 0].repeat(1, history, *[1] * data.grid.ndim),
                                      trajectory[:, 0], data.grid, data.meta, data.path))
    if trajectory.shape[1] <= history:
        raise DataError(f"{where}: trajectories of {trajectory.shape[1]} frames leave nothing to roll out after {history}")
    try:
        pred = predict_rollout(model.to(device), trajectory, history, batch_size, torch.device(device))
    except ValueError as err:
        raise DataError(f"{where}: {err}") from None
    true = trajectory[:, history:]
    per_step = per_time_step(relative_l2, pred.double(), true.double()).mean(dim=0).tolist()
    return evaluate_metrics(pred, true, data.grid), per_step, pred


def check_operator_run(config, run_dir: str | Path) -> None:
    """Refuse runs that learned no operator (a diffusion prior) with a one-line error."""
    if config.train.task == "diffusion":
        raise OplearnError(f"'{run_dir}' is a diffusion prior (train.task=diffusion), not an operator to evaluate on "
                           f"test files; draw samples with 'oplearn sample {run_dir}'")


def evaluate_run(run_dir: str | Path, paths: list[str | Path], batch_size: int = 32, write: bool = True) -> list[dict]:
    """Evaluate a run's best model on each file; rows are sorted by resolution.

    Writes ``metrics.json`` in the run directory (``{"results": rows}``) when ``write``.
    For a one-step run (``train.task=one_step``) each file's trajectories are rolled out from
    their first ``train.history`` frames: ``metrics`` are averaged over samples and steps and
    the row also holds ``relative_l2_per_step`` (a list, one value per predicted frame).
    """
    model, config = load_run(run_dir)
    check_operator_run(config, run_dir)
    rows = []
    for path in paths:
        if config.train.task == "one_step":
            data = load_fields(path)
            metrics, per_step, _ = evaluate_rollout(model, data, config.train.history, batch_size)
            rows.append({"path": str(path), "resolution": data.resolution, "n": len(data), "metrics": metrics,
                         "relative_l2_per_step": per_step})
            continue
        data = map_view(load_fields(path), config.data.input_frames)
        metrics, _ = evaluate_fields(model, data, batch_size)
        rows.append({"path": str(path), "resolution": data.resolution, "n": len(data), "metrics": metrics})
    rows.sort(key=lambda r: [int(s) for s in r["resolution"].split("x")])
    if write:
        target = Path(run_dir) / METRICS_FILE
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps({"results": rows}, indent=2))
        os.replace(tmp, target)
    return rows


def format_table(rows: list[dict], metrics: tuple[str, ...] = ()) -> str:
    """A plain-text (markdown) table: one row per dataset, one column per metric."""
    if not rows:
        return "(no test data)"
    names = list(metrics) or list(rows[0]["metrics"])
    header = ["resolution", "n", *names, "file"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        values = [f"{r['metrics'][m]:.4g}" for m in names]
        lines.append("| " + " | ".join([r["resolution"], str(r["n"]), *values, Path(r["path"]).name]) + " |")
    return "\n".join(lines)
