"""``oplearn inverse`` end to end on tiny trained priors (joint, and DDIS with a forward operator)."""

import json

import numpy as np
import pytest
import torch
import yaml
from helpers import run_cli, tiny_config

from oplearn.grids import Grid
from oplearn.inverse.solver_operator import SolverOperator
from oplearn.pdes import Darcy


def _prior_config(path, data, fields):
    config = {
        "seed": 0,
        "data": {"path": str(data), "n_train": 32, "n_val": 8, "batch_size": 8},
        "train": {
            "task": "diffusion",
            "epochs": 3,
            "lr": 1e-2,
            "weight_decay": 0.0,
            "scheduler": "constant",
            "threads": 1,
        },
        "diffusion": {
            "fields": fields,
            "noise": {"kind": "grf"},
            "net": {"modes": 4, "width": 8, "scales": [0.5], "embedding": 16, "projection_channels": 16},
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from oplearn.data.generate import generate_dataset
    from oplearn.pdes import Darcy

    root = tmp_path_factory.mktemp("inverse")
    data = root / "darcy16.h5"
    generate_dataset(Darcy(), n=40, resolution=16, out=data, seed=0, progress=False)
    run_cli("train", _prior_config(root / "joint.yaml", data, "joint"), "--out", root / "joint", "--no-progress")
    return root, data


def _inverse(run, data, out, *extra, check=True, steps=20):
    """``oplearn inverse`` on the 16x16 test prior; ``steps=None`` leaves the sampler steps at their default."""
    return run_cli(
        "inverse",
        run,
        "--observe",
        "u",
        "--points",
        40,
        "--samples",
        4,
        *(() if steps is None else ("--steps", steps)),
        "--data",
        data,
        "--index",
        39,
        "--out",
        out,
        "--no-progress",
        *extra,
        check=check,
    )


def test_inverse_cli_writes_posterior_metrics_and_figure(runs):
    root, data = runs
    out = root / "post"
    proc = _inverse(root / "joint", data, out, steps=None)
    assert "posterior samples" in proc.stdout
    post = np.load(out / "posterior.npz")
    assert post["samples"].shape == (4, 2, 16, 16) and post["mean"].shape == (2, 16, 16)
    assert list(post["names"]) == ["a", "u"] and len(post["index"]) == 40 and "truth" in post
    assert (post["std"] >= 0).all() and (post["lower"] <= post["upper"]).all()
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"a", "u"} and 0 <= metrics["a"]["error_rate"] <= 1
    assert 0 <= metrics["u"]["calibration_90"] <= 1
    assert (out / "posterior.png").stat().st_size > 0
    settings = json.loads((out / "metrics.json").read_text())
    # the defaults: covariance guidance, 10 steps, GMRES <= 16 (the normalized scale: 20 steps)
    assert (settings["scale"], settings["steps"], settings["krylov"]) == ("covariance", 10, 16)
    # Guidance pulls the observed field towards the truth (compared with the same prior unguided).
    free = root / "free"
    _inverse(root / "joint", data, free, "--scale", "normalized", "--weight", 0, steps=None)
    unguided = json.loads((free / "metrics.json").read_text())
    assert unguided["steps"] == 20
    assert metrics["u"]["relative_l2"] < 0.9 * unguided["metrics"]["u"]["relative_l2"]


def test_inverse_cli_ddis_and_daps(runs):
    root, data = runs
    run_cli("train", _prior_config(root / "coef.yaml", data, "inputs"), "--out", root / "coef", "--no-progress")
    run_cli("train", tiny_config(root / "forward.yaml", data, epochs=2), "--out", root / "forward", "--no-progress")
    out = root / "ddis"
    _inverse(
        root / "coef",
        data,
        out,
        "--forward-run",
        root / "forward",
        "--method",
        "daps",
        "--tau",
        "0.01",
        "--langevin-steps",
        3,
        "--ode-steps",
        2,
    )
    post = np.load(out / "posterior.npz")
    assert post["samples"].shape == (4, 2, 16, 16) and list(post["names"]) == ["a", "u"]
    # Line 4 drawn as a Gaussian (linearised through the trained operator): finite samples, recorded.
    _inverse(
        root / "coef",
        data,
        out,
        "--forward-run",
        root / "forward",
        "--method",
        "daps",
        "--conditional",
        "gaussian",
        "--tau",
        "0.01",
        "--ode-steps",
        2,
    )
    assert json.loads((out / "metrics.json").read_text())["conditional"] == "gaussian"
    assert np.isfinite(np.load(out / "posterior.npz")["samples"]).all()
    # Covariance guidance runs through the forward operator: vector-Jacobian products and forward differences.
    _inverse(root / "coef", data, out, "--forward-run", root / "forward", "--krylov", 3)
    assert json.loads((out / "metrics.json").read_text())["krylov"] == 3
    assert np.isfinite(np.load(out / "posterior.npz")["samples"]).all()
    proc = _inverse(root / "joint", data, out, "--forward-run", root / "forward", check=False)
    assert proc.returncode == 2 and "DDIS" in proc.stderr
    # The Darcy solver itself as the forward operator: every drawn u solves the PDE for its drawn a.
    _inverse(root / "coef", data, out, "--forward-solver")
    assert json.loads((out / "metrics.json").read_text())["forward_solver"] is True
    samples = torch.from_numpy(np.load(out / "posterior.npz")["samples"]).double()
    solved = SolverOperator(Darcy(), Grid((16, 16)))(samples[:, :1])
    assert torch.isfinite(samples).all() and torch.allclose(samples[:, 1:], solved, rtol=1e-4, atol=1e-7)
    for extra in (("--forward-run", root / "forward"), ()):
        proc = _inverse(
            root / "joint" if not extra else root / "coef", data, out, "--forward-solver", *extra, check=False
        )
        assert proc.returncode == 2 and ("not both" in proc.stderr if extra else "DDIS" in proc.stderr)


def test_inverse_cli_errors(runs):
    root, data = runs
    proc = run_cli("inverse", root / "joint", "--observe", "p", "--data", data, check=False)
    assert proc.returncode == 2 and "error:" in proc.stderr and "a, u" in proc.stderr
    proc = run_cli("inverse", root / "joint", "--observe", "u", check=False)
    assert proc.returncode == 2 and "--data" in proc.stderr
    proc = run_cli("inverse", root / "joint", "--observe", "u", "--data", data, "--samples", 1, check=False)
    assert proc.returncode == 2 and "--samples" in proc.stderr
    proc = run_cli(
        "inverse", root / "joint", "--observe", "u", "--data", data, "--method", "daps", "--krylov", 4, check=False
    )
    assert proc.returncode == 2 and "--krylov applies to DPS" in proc.stderr
    proc = _inverse(root / "joint", data, root / "bad", "--krylov", 0, check=False)
    assert proc.returncode == 2 and "krylov must be >= 1" in proc.stderr
    proc = _inverse(root / "joint", data, root / "bad", "--pde-weight", 1, check=False)
    assert proc.returncode == 2 and "--scale normalized" in proc.stderr
