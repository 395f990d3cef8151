import json

import pytest

from helpers import run_cli, tiny_config
from oplearn.cli import main


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_cli("generate", "darcy", "--n", 48, "--resolution", 16, "--out", root / "train.h5", "--seed", 0, "--no-progress")
    run_cli("generate", "darcy", "--n", 8, "--resolution", 16, "--out", root / "test16.h5", "--seed", 1, "--no-progress")
    run_cli("generate", "darcy", "--n", 8, "--resolution", 31, "--out", root / "test31.h5", "--seed", 1, "--no-progress")
    return root


def test_generate_train_evaluate_report_end_to_end(workspace):
    root = workspace
    card = run_cli("info", root / "test31.h5").stdout
    assert "darcy" in card and "31 x 31" in card and "complete (8 of 8 samples)" in card
    config = tiny_config(root / "c.yaml", root / "missing.h5", epochs=2)
    proc = run_cli("train", config, "--out", root / "run", "--set", f"data.path={root / 'train.h5'}",
                   "--set", "train.epochs=3", "--set", "seed=4", "--no-progress")
    assert "trained 3 epochs" in proc.stdout
    saved = (root / "run" / "config.yaml").read_text()
    assert "epochs: 3" in saved and "seed: 4" in saved and "train.h5" in saved

    proc = run_cli("evaluate", root / "run", "--data", root / "test31.h5", root / "test16.h5")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| resolution | n | relative_l2")
    assert lines[2].startswith("| 16x16 | 8 |") and lines[3].startswith("| 31x31 | 8 |")
    results = json.loads((root / "run" / "metrics.json").read_text())["results"]
    assert [r["resolution"] for r in results] == ["16x16", "31x31"]
    assert 0 < results[0]["metrics"]["relative_l2"] < 1

    run_cli("report", root / "run", "--data", root / "test16.h5", root / "test31.h5")
    report = root / "run" / "report"
    for name in ("report.html", "loss_curves.png", "samples_16x16.png", "samples_31x31.png", "error_vs_resolution.png"):
        assert (report / name).stat().st_size > 1000, name
    markdown = (report / "report.md").read_text()
    assert "| 31x31 | 8 |" in markdown and "![Error against resolution](error_vs_resolution.png)" in markdown
    html = (report / "report.html").read_text()
    assert "data:image/png;base64," in html and "<table>" in html
    # what the run was: task, model, data, epochs, training time, device
    for item in ("| task | `map` |", "| model | `fno` (", "train.h5", "| epochs | 3 of 3 |", "| device | cpu |", "training time"):
        assert item in markdown, item

    # evaluating one file again keeps the other's results
    run_cli("evaluate", root / "run", "--data", root / "test16.h5")
    results = json.loads((root / "run" / "metrics.json").read_text())["results"]
    assert sorted(r["resolution"] for r in results) == ["16x16", "31x31"]
    # a report that fails leaves the previous one whole and nothing half-written
    before = sorted(p.name for p in report.iterdir())
    proc = run_cli("report", root / "run", "--data", root / "missing.h5", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
    assert sorted(p.name for p in report.iterdir()) == before
    assert [p.name for p in (root / "run").iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "CONFIG", "--out", "r", "--set", "train.epoch=2"], "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
        (["train", "CONFIG", "--out", "r", "--set", "train.epochs=two"], "key 'train.epochs'"),
        (["train", "CONFIG", "--out", "r", "--set", "data.path=nowhere.h5"], "data file 'nowhere.h5' does not exist"),
        (["evaluate", "no_run", "--data", "x.h5"], "run directory 'no_run' does not exist"),
        (["generate", "darcy", "--n", "0", "--resolution", "8", "--out", "x.h5"], "--n must be positive"),
        (["generate", "heat", "--n", "2", "--resolution", "8", "--out", "x.h5"], "unknown PDE 'heat'"),
        (["generate", "darcy", "--n", "2", "--resolution", "8", "--out", "x.h5", "--param", "colour=3"], "bad parameters for PDE 'darcy'"),
    ],
)
def test_bad_input_is_one_clear_line_and_nonzero_exit(workspace, tmp_path, monkeypatch, capsys, args, message):
    config = tiny_config(tmp_path / "c.yaml", workspace / "train.h5")
    monkeypatch.chdir(tmp_path)
    assert main([str(config) if a == "CONFIG" else a for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not list(tmp_path.glob("*.h5*")) and not (tmp_path / "r").exists(), "bad input must leave nothing behind"


def test_model_modes_too_large_for_the_resolution_is_a_clear_error(workspace, tmp_path):
    config = tiny_config(tmp_path / "c.yaml", workspace / "train.h5", epochs=1)
    run_cli("train", config, "--out", tmp_path / "run", "--no-progress")
    run_cli("generate", "darcy", "--n", 2, "--resolution", 6, "--out", tmp_path / "t6.h5", "--no-progress")
    proc = run_cli("evaluate", tmp_path / "run", "--data", tmp_path / "t6.h5", check=False)
    assert proc.returncode == 2 and "t6.h5" in proc.stderr and "modes" in proc.stderr
