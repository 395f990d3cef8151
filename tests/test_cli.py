import json
from pathlib import Path

import pytest
from helpers import run_cli, tiny_config

from oplearn.cli import main


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_cli(
        "generate", "darcy", "--n", 48, "--resolution", 16, "--out", root / "train.h5", "--seed", 0, "--no-progress"
    )
    run_cli(
        "generate", "darcy", "--n", 8, "--resolution", 16, "--out", root / "test16.h5", "--seed", 1, "--no-progress"
    )
    run_cli(
        "generate", "darcy", "--n", 8, "--resolution", 31, "--out", root / "test31.h5", "--seed", 1, "--no-progress"
    )
    return root


def test_generate_train_evaluate_report_end_to_end(workspace):
    root = workspace
    card = run_cli("info", root / "test31.h5").stdout
    assert "darcy" in card and "31 x 31" in card and "complete (8 of 8 samples)" in card
    config = tiny_config(root / "c.yaml", root / "missing.h5", epochs=2)
    proc = run_cli(
        "train",
        config,
        "--out",
        root / "run",
        "--set",
        f"data.path={root / 'train.h5'}",
        "--set",
        "train.epochs=3",
        "--set",
        "seed=4",
        "--no-progress",
    )
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
    for item in (
        "| task | `map` |",
        "| model | `fno` (",
        "train.h5",
        "| epochs | 3 of 3 |",
        "| device | cpu |",
        "training time",
    ):
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


def test_train_evaluates_the_test_files_that_fit_and_names_the_others(workspace, tmp_path, capsys):
    """A U-Net is tied to its training grid: train exits 0, scores the 16x16 file and says why 31x31 was skipped."""
    config = tiny_config(
        tmp_path / "c.yaml",
        workspace / "train.h5",
        epochs=1,
        test=[workspace / "test16.h5", workspace / "test31.h5"],
        model={"name": "unet", "width": 4, "levels": 2},
    )
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| 16x16 | 8 |" in out and "31x31" not in out.split("not evaluated:")[0]
    assert "not evaluated: test31.h5: this U-Net is tied to the 16x16 grid" in out
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    assert [r["resolution"] for r in rows] == ["16x16"]
    # the report evaluates the same files and names the skipped one
    assert main(["report", str(tmp_path / "run")]) == 0
    assert "Not evaluated: `test31.h5`" in (tmp_path / "run" / "report" / "report.md").read_text()


def test_evaluate_force_and_a_warning_for_other_recipe_parameters(workspace, tmp_path):
    from oplearn.cli import _warning_line
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.errors import DataError, OplearnWarning
    from oplearn.evaluate import evaluate_run
    from oplearn.training.tasks import EvaluateOptions

    config = tiny_config(tmp_path / "c.yaml", workspace / "train.h5", epochs=1)
    assert main(["train", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    poisson = generate_dataset(make_pde("poisson"), 2, 16, tmp_path / "poisson.h5", progress=False)
    contrast = generate_dataset(make_pde("darcy", {"high": 10.0}), 2, 16, tmp_path / "contrast.h5", progress=False)
    with pytest.raises(DataError, match="holds poisson data, the run learned darcy"):
        evaluate_run(tmp_path / "run", [poisson])
    assert evaluate_run(tmp_path / "run", [poisson], options=EvaluateOptions(force=True))[0]["n"] == 2
    with pytest.warns(OplearnWarning, match=r"other parameters than the training data: high=10.0 \(trained on 12.0\)"):
        evaluate_run(tmp_path / "run", [contrast])
    with pytest.warns(OplearnWarning):
        assert main(["evaluate", str(tmp_path / "run"), "--data", str(contrast)]) == 0
    assert (
        _warning_line("recipe differs", OplearnWarning, "x.py", 1) == "warning: recipe differs\n"
    )  # how the CLI shows it
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    assert {Path(r["path"]).name for r in rows} == {"poisson.h5", "contrast.h5"}  # merged per file


def test_discoverability(capsys, monkeypatch):
    from oplearn import __version__
    from oplearn.cli import build_parser
    from oplearn.config import MODEL_CONFIGS, shipped_configs
    from oplearn.kolmogorov import PROBLEMS
    from oplearn.pdes import PDES
    from oplearn.sampling.methods import METHODS
    from oplearn.sampling.targets import TARGETS
    from oplearn.training.tasks import TASKS

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"oplearn {__version__}"
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in PDES) and "(default: 32)" in help_text and "oplearn list pdes" in help_text

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for name, cls in PDES.items():
        assert (
            name in listing
            and ", ".join(f"{k}={d!r}" if isinstance(d, str) else f"{k}={d}" for k, (_, d) in cls.parameters().items())
            in listing
        )
    for name, model in MODEL_CONFIGS.items():
        assert f"  {name} " in listing and all(f"{key}=" in listing for key in model.model_fields if key != "name")
    assert all(name in listing for name in [*TASKS, *shipped_configs(), "neuraloperator", "the-well"])
    assert all(f"  {name} " in listing for name in [*PROBLEMS, *TARGETS, *METHODS])
    assert (
        "parameters: dim=150" in listing
        and "mass=1.0, learn_mass=True, learn_diffusion=True, net=None, learn_annealing=False, segments=4, resample_threshold=0.3, mcmc=None, "
        "mcmc_steps=1, "
        "mcmc_step_size=0.1, leapfrog=5, replay_capacity=0, replay_temperature=1.0"
        in listing
    )  # SCLD takes CMCD's too, then its moves' and replay buffer's
    assert "(integrator='OBABO')" in listing  # registered variants name what they fix

    assert main(["config", "darcy_fno"]) == 0
    assert capsys.readouterr().out == shipped_configs()["darcy_fno"].read_text()
    assert main(["config", "darcy_fno", "--set", "model.name=unet"]) == 0
    assert "model:\n  name: unet\n  width: 32\n  levels: 3" in capsys.readouterr().out

    def options(parser, prog):
        for action in parser._actions:
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, child in action.choices.items():
                    yield from options(child, f"{prog} {name}")
            elif action.option_strings and action.dest != "help":
                yield prog, action

    missing = [
        f"{prog} {action.option_strings[0]}" for prog, action in options(build_parser(), "oplearn") if not action.help
    ]
    assert not missing, f"options without help: {missing}"


def test_negative_numbers_are_values(capsys):
    assert (
        main(
            [
                "solve",
                "wos",
                "--domain",
                "ball:0,0,1",
                "--boundary",
                "x",
                "--point",
                "-0.6,0.2",
                "--point",
                "-.5,-1e-1",
                "--walks",
                "10",
            ]
        )
        == 0
    )
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[:2] == ["-0.6", "0.2"] and rows[2].split()[:2] == ["-0.5", "-0.1"]


def test_the_license_is_an_spdx_string():
    """setuptools >= 77 warns (three times per install) about a license table."""
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])
