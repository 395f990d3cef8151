"""Evaluate trained runs: operators on dataset files at any resolution, and the shared
``metrics.json`` bookkeeping every task's evaluation goes through."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oplearn.data.files import FieldData
from oplearn.data.problem import check_same_problem
from oplearn.data.readers import read_dataset
from oplearn.errors import DataError, OplearnError
from oplearn.metrics import evaluate_metrics, per_time_step, relative_l2, vrmse_by_field
from oplearn.models.operator import OperatorModel
from oplearn.sphere.grid import SphereGrid
from oplearn.sphere.metrics import latitude_band_errors
from oplearn.training.rollout import full_trajectory
from oplearn.training.rundir import METRICS_FILE, Run, open_run, read_results, write_json
from oplearn.training.tasks import EvaluateOptions, map_view, predict, predict_rollout

if TYPE_CHECKING:
    from oplearn.physics import PhysicsConfig


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


def evaluate_fields(
    model: OperatorModel, data: FieldData, batch_size: int = 32, device: str | torch.device = "cpu"
) -> tuple[dict, torch.Tensor]:
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
    check_compatible(
        model,
        FieldData(
            trajectory[:, 0].repeat(1, history, *[1] * data.grid.ndim),
            trajectory[:, 0],
            data.grid,
            data.meta,
            data.path,
        ),
    )
    if trajectory.shape[1] <= history:
        raise DataError(
            f"{where}: trajectories of {trajectory.shape[1]} frames leave nothing to roll out after {history}"
        )
    try:
        pred = predict_rollout(model.to(device), trajectory, history, batch_size, torch.device(device))
    except ValueError as err:
        raise DataError(f"{where}: {err}") from None
    true = trajectory[:, history:]
    per_step = per_time_step(relative_l2, pred.double(), true.double()).mean(dim=0).tolist()
    return evaluate_metrics(pred, true, data.grid), per_step, pred


def test_paths(run: Run, paths: list[str | Path]) -> list[Path]:
    """The files to evaluate a field task on: ``paths``, else the config's ``data.test``."""
    paths = [Path(p) for p in paths] or [Path(t.path) for t in run.config.data.test]
    if not paths:
        raise OplearnError(
            f"no test data for '{run.dir}': pass --data FILE.h5 [FILE.h5 ...] or list data.test in the config"
        )
    return paths


def sphere_errors(pred: torch.Tensor, true: torch.Tensor, data: FieldData) -> dict:
    """``{"latitude_bands": ...}``, the area-weighted errors per latitude band
    (:func:`oplearn.sphere.metrics.latitude_band_errors`), for fields on the sphere; ``{}`` otherwise."""
    return {"latitude_bands": latitude_band_errors(pred, true, data.grid)} if isinstance(data.grid, SphereGrid) else {}


def _row(path: Path, data: FieldData, metrics: dict, **extra: object) -> dict:
    return {
        "key": str(path.resolve()),
        "label": f"{path.name} ({data.resolution})",
        "path": str(path),
        "resolution": data.resolution,
        "n": len(data),
        "metrics": metrics,
        **extra,
    }


def fields_over_time(
    pred: torch.Tensor, true: torch.Tensor, data: FieldData
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Predictions and truth as ``(n, time, fields, *spatial)`` with the fields' names, for
    :func:`oplearn.metrics.vrmse_by_field`: trajectories as they are, steady fields with one
    step, frames folded into channels (``map`` on trajectories) unfolded by the file's output names."""
    names = list(data.meta.get("output_names") or [])
    ndim = data.grid.ndim
    if pred.ndim == ndim + 3:
        channels = pred.shape[2]
    else:
        channels = pred.shape[1]
        frames = channels // len(names) if names and channels % len(names) == 0 else 1
        pred, true = (x.reshape(x.shape[0], frames, channels // frames, *x.shape[2:]) for x in (pred, true))
        channels //= frames
    if len(names) != channels:
        names = [f"channel_{c}" for c in range(channels)]
    return pred, true, names


def load_test_data(run: Run, path: Path, options: EvaluateOptions) -> FieldData:
    """A test file of any readable format (:func:`oplearn.data.readers.read_dataset`), checked
    to hold the problem the run learned (:func:`oplearn.data.problem.check_same_problem`:
    another PDE or channel layout is refused unless ``options.force``)."""
    data = read_dataset(path)
    check_same_problem(run.info.get("problem"), data.meta, path, options.force)
    return data


def evaluate_map(run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
    """A ``map`` run's metrics on each file (trajectories viewed as the run learned them), sorted by resolution."""
    rows = []
    for path in test_paths(run, paths):
        data = map_view(load_test_data(run, path, options), run.config.data.input_frames)
        metrics, pred = evaluate_fields(run.model, data, options.batch_size, options.device)
        if run.config.train.physics is not None:
            metrics.update(physics_terms(run.config.train.physics, data, pred))
        rows.append(
            _row(
                path,
                data,
                metrics,
                vrmse_by_field=vrmse_by_field(*fields_over_time(pred, data.outputs, data)),
                **sphere_errors(pred, data.outputs, data),
            )
        )
    return sorted(rows, key=_resolution_order)


def physics_terms(config: PhysicsConfig, data: FieldData, pred: torch.Tensor) -> dict[str, float]:
    """The unweighted terms of a physics-informed run's loss (:class:`oplearn.physics.PhysicsLoss`)
    on the data grid, sample means, for the predictions (``residual_<term>``) and for the stored
    solutions (``residual_<term>_reference``: the floor set by the file's own discretisation)."""
    from oplearn.physics import PhysicsLoss, pde_from_meta

    pde, grid = pde_from_meta(data.meta)
    loss = PhysicsLoss(pde, grid, precondition=config.precondition, solution_scale=float(data.outputs.std()))
    found = {}
    for suffix, fields in (("", pred), ("_reference", data.outputs)):
        for name, values in loss.terms(fields.double(), data.inputs.double()).items():
            found[f"residual_{name}{suffix}"] = values.mean().item()
    return found


def evaluate_one_step(run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
    """A ``one_step`` run rolled out over each file's trajectories from their first ``train.history``
    frames: ``metrics`` are averaged over samples and steps, ``relative_l2_per_step`` holds the
    relative L2 of each predicted frame (sample means)."""
    rows = []
    for path in test_paths(run, paths):
        data = load_test_data(run, path, options)
        metrics, per_step, pred = evaluate_rollout(
            run.model, data, run.config.train.history, options.batch_size, options.device
        )
        true = full_trajectory(data.inputs, data.outputs, data.time)[:, run.config.train.history :]
        rows.append(
            _row(
                path,
                data,
                metrics,
                relative_l2_per_step=per_step,
                vrmse_by_field=vrmse_by_field(*fields_over_time(pred, true, data)),
                **sphere_errors(pred, true, data),
            )
        )
    return sorted(rows, key=_resolution_order)


def _resolution_order(row: dict) -> list[int]:
    return [int(s) for s in row["resolution"].split("x")]


def merge_results(run_dir: str | Path, rows: list[dict]) -> list[dict]:
    """Merge ``rows`` into ``RUN/metrics.json`` by ``key`` (a row of the same key is replaced, others
    are kept) and write it atomically; returns all rows."""
    old = read_results(run_dir)
    new = {row["key"]: row for row in rows}
    merged = [new.pop(row["key"]) if row.get("key") in new else row for row in old] + list(new.values())
    write_json(Path(run_dir) / METRICS_FILE, {"results": merged})
    return merged


def evaluate_run(
    run_dir: str | Path,
    paths: list[str | Path] = (),
    batch_size: int = 32,
    write: bool = True,
    options: EvaluateOptions | None = None,
) -> list[dict]:
    """Evaluate a run's best model with its task's :meth:`~oplearn.training.tasks.Task.evaluate`.

    ``paths``: dataset files (default: the config's ``data.test``; tasks that draw their own
    test problems need none). With ``write`` the rows are merged into ``RUN/metrics.json``
    (:func:`merge_results`). Returns the rows of this evaluation.
    """
    run = open_run(run_dir)
    options = options or EvaluateOptions(batch_size=batch_size)
    rows = run.task.evaluate(run, [Path(p) for p in paths], options)
    if write:
        merge_results(run_dir, rows)
    return rows


def evaluate_each(
    run: Run, paths: list[str | Path], options: EvaluateOptions
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Evaluate ``run`` on each of ``paths`` on its own, skipping the files that do not suit its
    model (another grid for a grid-bound model, steady data for a rollout, another PDE):
    returns the rows and ``(path, reason)`` of each skipped file."""
    rows, skipped = [], []
    for path in paths:
        try:
            rows += run.task.evaluate(run, [Path(path)], options)
        except DataError as err:
            skipped.append((str(path), str(err).removeprefix(f"{path}: ").removeprefix(f"'{path}': ")))
    return rows, skipped


def evaluate_fitting(
    run_dir: str | Path, paths: list[str | Path], options: EvaluateOptions | None = None
) -> tuple[list[dict], list[tuple[str, str]]]:
    """:func:`evaluate_each` of the run in ``run_dir``, the rows merged into ``metrics.json``
    (what ``oplearn train`` does with the config's test files after training)."""
    rows, skipped = evaluate_each(open_run(run_dir), paths, options or EvaluateOptions())
    if rows:
        merge_results(run_dir, rows)
    return rows, skipped


def format_table(rows: list[dict], metrics: tuple[str, ...] = ()) -> str:
    """A plain-text (markdown) table: one row per evaluated dataset or estimate, one column per
    metric (``metrics``, default all of the first row's); absent values are left blank."""
    if not rows:
        return "(no results)"
    names = list(metrics) or list(dict.fromkeys(m for r in rows for m in r["metrics"]))
    fields = "resolution" in rows[0]
    header = ["resolution", "n", *names, "file"] if fields else ["evaluated", *names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        values = [_number(r["metrics"].get(m)) for m in names]
        cells = (
            [r["resolution"], str(r["n"]), *values, Path(r["path"]).name]
            if fields
            else [r.get("label", r["key"]), *values]
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _number(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) and len(value) == 2:  # an estimate with its half-width
        return f"{value[0]:.4g} ± {value[1]:.2g}"
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
