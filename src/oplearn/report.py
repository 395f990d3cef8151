"""Figures and a self-contained HTML / Markdown report of a training run."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from oplearn.data.files import load_fields  # noqa: E402
from oplearn.evaluate import check_operator_run, evaluate_fields, evaluate_run, format_table  # noqa: E402
from oplearn.training.run import LOG_FILE, load_run  # noqa: E402
from oplearn.training.tasks import map_view  # noqa: E402

REPORT_METRICS = ("relative_l2", "relative_h1", "nrmse", "max_error", "vrmse")


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` atomically (a hidden temporary file, then a rename) and close it."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_loss_curves(run_dir: Path, out: Path) -> Path | None:
    """Training loss and validation relative L2 per epoch (log scale)."""
    log = run_dir / LOG_FILE
    if not log.exists():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(epochs, [r["train_loss"] for r in records], label="train loss")
    if any("val_relative_l2" in r for r in records):
        ax.semilogy(epochs, [r.get("val_relative_l2", float("nan")) for r in records], label="validation relative L2")
    ax.set_xlabel("epoch")
    ax.set_ylabel("relative L2")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return save_figure(fig, out)


def plot_samples(inputs, truth, pred, title: str, out: Path, n_samples: int = 3) -> Path:
    """Input, truth, prediction and absolute error for the first samples (2D fields, channel 0)."""
    n = min(n_samples, len(inputs))
    fig, axes = plt.subplots(n, 4, figsize=(13, 3.1 * n), squeeze=False)
    for i in range(n):
        err = (pred[i, 0] - truth[i, 0]).abs()
        vmin, vmax = float(truth[i, 0].min()), float(truth[i, 0].max())
        panels = [
            (inputs[i, 0], "input", "viridis", None, None),
            (truth[i, 0], "truth", "magma", vmin, vmax),
            (pred[i, 0], "prediction", "magma", vmin, vmax),
            (err, "|error|", "inferno", None, None),
        ]
        for ax, (field, name, cmap, lo, hi) in zip(axes[i], panels):
            im = ax.imshow(field.T.numpy(), origin="lower", cmap=cmap, vmin=lo, vmax=hi, extent=(0, 1, 0, 1))
            ax.set_title(f"{name} (sample {i})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_error_vs_resolution(rows: list[dict], train_resolution: str, out: Path) -> Path | None:
    """Relative L2 (and H1 when present) against the test resolution."""
    if not rows:
        return None
    sizes = [int(r["resolution"].split("x")[0]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("relative_l2", "relative_h1"):
        if name in rows[0]["metrics"]:
            ax.plot(sizes, [r["metrics"][name] for r in rows], "o-", label=name)
    ax.axvline(int(train_resolution.split("x")[0]), color="gray", ls="--", label="training resolution")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [r["resolution"] for r in rows])
    ax.set_xlabel("test resolution")
    ax.set_ylabel("error")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return save_figure(fig, out)


def make_report(run_dir: str | Path, data_paths: list[str | Path] | None = None, out_dir: str | Path | None = None) -> Path:
    """Write figures, ``report.md`` and a self-contained ``report.html``; returns the HTML path.

    Test data defaults to the run config's ``data.test`` files.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    model, config = load_run(run_dir)
    check_operator_run(config, run_dir)
    paths = [Path(p) for p in (data_paths or [t.path for t in config.data.test])]
    rows = evaluate_run(run_dir, paths) if paths else []
    train_res = "x".join(map(str, model.train_shape))

    figures: list[tuple[str, Path]] = []
    curve = plot_loss_curves(run_dir, out_dir / "loss_curves.png")
    if curve:
        figures.append(("Training curves", curve))
    for row in rows:
        data = map_view(load_fields(row["path"], limit=min(3, row["n"])), config.data.input_frames)
        _, pred = evaluate_fields(model, data)
        if data.grid.ndim == 2:
            name = f"samples_{row['resolution']}.png"
            figures.append((f"Test samples at {row['resolution']}", plot_samples(
                data.inputs, data.outputs, pred, f"{Path(row['path']).name}: relative L2 "
                f"{row['metrics']['relative_l2']:.4f} (mean over {row['n']} samples)", out_dir / name)))
    err = plot_error_vs_resolution(rows, train_res, out_dir / "error_vs_resolution.png")
    if err:
        figures.append(("Error against resolution", err))

    table = format_table(rows, tuple(m for m in REPORT_METRICS if rows and m in rows[0]["metrics"]))
    summary = (
        f"Model: `{config.model.name}` ({sum(p.numel() for p in model.parameters()):,} parameters), "
        f"trained at {train_res} for {config.train.epochs} epochs on "
        f"{f'`{config.data.path}`' if config.data.path else f'its own targets (train.task={config.train.task})'}. "
        f"Metrics are sample means in physical units; definitions in `oplearn.metrics`."
    )
    md = ["# oplearn report", "", summary, "", "## Test metrics", "", table, ""]
    for title, path in figures:
        md += [f"## {title}", "", f"![{title}]({path.name})", ""]
    _write(out_dir / "report.md", "\n".join(md))

    body = [f"<h1>oplearn report</h1><p>{html.escape(summary)}</p><h2>Test metrics</h2>", _html_table(rows, table)]
    for title, path in figures:
        data = base64.b64encode(path.read_bytes()).decode()
        body.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>oplearn report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}</style></head><body>"
        + "".join(body) + "</body></html>"
    )
    return _write(out_dir / "report.html", page)


def _html_table(rows: list[dict], markdown: str) -> str:
    lines = [line for line in markdown.splitlines() if not line.startswith("|---")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    if len(cells) < 2:
        return f"<p>{html.escape(markdown)}</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
