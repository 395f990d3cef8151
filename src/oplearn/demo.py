"""The one-command demo: generate Darcy data, train an FNO, evaluate across resolutions, report."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from oplearn.config import RunConfig, validate_config
from oplearn.evaluate import format_table
from oplearn.report import make_report
from oplearn.training.run import train_to_end
from oplearn.training.rundir import read_results


def demo_config(out_dir: Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The embedded demo config with its data paths placed under ``out_dir``."""
    from oplearn.config import apply_overrides

    raw = yaml.safe_load(resources.files("oplearn").joinpath("configs/demo.yaml").read_text())
    raw["data"]["path"] = str(out_dir / raw["data"]["path"])
    for spec in raw["data"]["test"]:
        spec["path"] = str(out_dir / spec["path"])
    return validate_config(apply_overrides(raw, list(overrides)))


def run_demo(out_dir: str | Path, overrides: list[str] = (), progress: bool = True) -> Path:
    """Run the demo into ``out_dir`` (re-running reuses its data and finished run); returns the report."""
    out_dir = Path(out_dir)
    config = demo_config(out_dir, overrides)
    run_dir = out_dir / "run"
    train_to_end(config, run_dir, progress=progress)
    report = make_report(run_dir, out_dir=out_dir / "report")
    print(format_table(read_results(run_dir), ("relative_l2", "relative_h1", "nrmse", "max_error")))
    return report
