"""Kolmogorov PDEs through SDEs: closed forms against Monte Carlo, unbiased targets, the BSDE
loss's vanishing gradient variance, training in 10 and 100 dimensions, metrics that respect the
reference's own error, exact resume and ``oplearn train / evaluate / report`` end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml
from helpers import one_thread, run_cli, train_whole_and_resumed  # noqa: F401  (fixture)
from torch import nn

from oplearn.config import load_config, shipped_configs
from oplearn.kolmogorov import KolmogorovModel, make_loss, make_problem, solution_metrics
from oplearn.kolmogorov.task import KolmogorovTask
from oplearn.models.mlp import MLP, MultilevelMLP
from oplearn.training.run import train

pytestmark = pytest.mark.usefixtures("one_thread")

#: Problems with a closed form (or a fine deterministic reference), small enough for tests.
EXACT = [
    ("black_scholes", {}),
    ("heat_paraboloid", {"dim": 3}),
    ("heat_gaussian", {"dim": 10}),
    ("heat", {"dim": 5}),
    ("gaussian", {"dim": 5}),
    ("hjb", {"dim": 2}),
]


def _mc(problem, t, x, p, n, gen, steps=None):
    """Monte-Carlo mean and standard error of phi(X_t) at each point: exact draws, or Euler paths of ``steps``."""
    rep = lambda v: v.repeat_interleave(n, 0)
    if steps is None:
        end = problem.sample_end(rep(t), rep(x), rep(p), gen)
    else:
        end = problem.paths(rep(t), rep(x), rep(p), steps, gen, keep_path=False).final
    y = problem.initial(end, rep(p)).view(len(t), n)
    return y.mean(1), y.std(1) / math.sqrt(n)


@pytest.mark.parametrize("name,params", EXACT, ids=[n for n, _ in EXACT])
def test_closed_forms_match_monte_carlo_of_the_sde(name, params):
    """Exact draws (where the law is known) and Euler-Maruyama paths of the SDE core both average
    to the closed form: within 4 standard errors, plus the Euler bias O(h) for the paths."""
    problem = make_problem(name, **params)
    gen = torch.Generator().manual_seed(1)
    t, x, p = problem.sample(3, gen, dtype=torch.float64)
    exact = problem.exact(t, x, p)
    if problem.sample_end(t, x, p, gen) is not None:
        mean, se = _mc(problem, t, x, p, 40000, gen)
        assert torch.all((mean - exact).abs() < 4 * se + 1e-12), (mean, exact, se)
    mean, se = _mc(problem, t, x, p, 4000, gen, steps=100)
    assert torch.all((mean - exact).abs() < 4 * se + 0.01 * (exact.abs() + 1)), (mean, exact, se)


def test_monte_carlo_references_carry_their_standard_error():
    """Basket (Euler reference) and correlated Black-Scholes (exact log-normal draws): two seeds agree
    within their standard errors, which shrink like 1/sqrt(samples); the exact draws of the 50D model
    agree with Euler paths of its drift and diffusion."""
    gen = lambda s: torch.Generator().manual_seed(s)
    basket = make_problem("basket")
    t, x, p = basket.sample(4, gen(0), dtype=torch.float64)
    a, b = basket.reference(t, x, p, 4000, gen(1)), basket.reference(t, x, p, 4000, gen(2))
    assert torch.all((a.values - b.values).abs() < 4 * torch.hypot(a.stderr, b.stderr))
    c = basket.reference(t, x, p, 16000, gen(3))
    assert torch.allclose(a.stderr / c.stderr, torch.full_like(a.stderr, 2.0), rtol=0.15)
    bs = make_problem("black_scholes_correlated", dim=10)
    t, x, p = bs.sample(3, gen(4), dtype=torch.float64)
    ref = bs.reference(t, x, p, 20000, gen(5))
    assert torch.all(ref.stderr > 0)
    euler, se = _mc(bs, t, x, p, 20000, gen(6), steps=50)
    assert torch.all((euler - ref.values).abs() < 4 * torch.hypot(se, ref.stderr) + 0.01 * (ref.values.abs() + 1))


class ExactPlusBump(nn.Module):
    """``u(t, x) + theta g(t, x)``: the exact solution at ``theta = 0``, one learnable parameter."""

    def __init__(self, problem):
        super().__init__()
        self.problem, self.theta = problem, nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, t, x, p):
        return self.problem.exact(t, x, p) + self.theta * t * torch.sin(x).sum(-1)


class ExactWithGradientBump(ExactPlusBump):
    """The exact solution with a learned-gradient head ``grad u + theta sin(x)``: exact at ``theta = 0``."""

    def gradient(self, t, x, p):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.problem.exact(t, x, p).sum(), x)
        return grad + self.theta * torch.sin(x.detach())


def _per_sample_gradients(loss, problem, model, t, x, p, seed):
    """Per-sample gradients d(residual^2)/d theta at theta = 0 (the residual is affine in theta)."""
    r0 = loss.residuals(problem, model, t, x, p, torch.Generator().manual_seed(seed)).detach()
    with torch.no_grad():
        model.theta.fill_(1.0)
    r1 = loss.residuals(problem, model, t, x, p, torch.Generator().manual_seed(seed)).detach()
    with torch.no_grad():
        model.theta.fill_(0.0)
    return r0, 2 * r0 * (r1 - r0)


@pytest.mark.parametrize("name", ["heat", "black_scholes"])
def test_targets_are_unbiased(name):
    """E[phi(X_t)] = u (Feynman-Kac) and the detached BSDE target keeps that mean for any model (the
    stochastic integral is a martingale): both within 4 standard errors (+ Euler bias for the paths)."""
    problem = make_problem(name, **({"dim": 10} if name == "heat" else {}))
    gen = torch.Generator().manual_seed(0)
    t, x, p = (v.repeat_interleave(20000, 0) for v in problem.sample(2, gen, dtype=torch.float64))
    exact = problem.exact(t, x, p).view(2, -1)[:, 0]
    net = KolmogorovModel.for_problem(MLP(1 + problem.dim + problem.n_parameters, 16, 2), problem).double()
    for loss, bias in ((make_loss("fk", 1), 0.0), (make_loss("detach", 16), 0.02)):
        y = (net(t, x, p) - loss.residuals(problem, net, t, x, p, gen)).detach().view(2, -1)
        se = y.std(1) / math.sqrt(y.shape[1])
        assert torch.all((y.mean(1) - exact).abs() < 4 * se + bias * (exact.abs() + 1)), (
            loss.name,
            y.mean(1),
            exact,
            se,
        )


def test_bsde_gradient_variance_vanishes_at_the_solution_and_fk_does_not():
    """At the exact solution the BSDE residual is pure discretisation error: its per-sample gradient
    variance falls like 1/steps, while the Feynman-Kac gradient's stays large."""
    problem = make_problem("heat", dim=10)
    model = ExactPlusBump(problem)
    t, x, p = problem.sample(4000, torch.Generator().manual_seed(0), dtype=torch.float64)
    variances = {}
    for name, steps in (("fk", 1), ("bsde", 4), ("bsde", 64), ("detach", 64)):
        r, grads = _per_sample_gradients(make_loss(name, steps), problem, model, t, x, p, seed=1)
        variances[name, steps] = grads.var().item()
        if name != "fk":
            assert r.square().mean() < 2.0 * problem.dim * 0.25**2 / steps  # E r^2 = 2 t^2 tr((s s^T)^2) / steps
    assert variances["bsde", 64] < variances["bsde", 4] / 8
    assert variances["bsde", 64] < 0.05 * variances["fk", 1]
    assert variances["detach", 64] < 0.05 * variances["fk", 1]


def test_learned_gradient_bsde_variance_vanishes_at_the_solution():
    """With the exact solution and the exact gradient in the integral, the learned-gradient BSDE's
    per-sample gradient (in a parameter of the gradient network) has variance falling like 1/steps,
    far below the Feynman-Kac gradient's; a wrong gradient network leaves a residual that does not."""
    problem = make_problem("heat", dim=10)
    model = ExactWithGradientBump(problem)
    t, x, p = problem.sample(4000, torch.Generator().manual_seed(0), dtype=torch.float64)
    _, fk = _per_sample_gradients(make_loss("fk", 1), problem, ExactPlusBump(problem), t, x, p, seed=1)
    variances = {}
    for steps in (4, 64):
        r, grads = _per_sample_gradients(make_loss("bsde_grad", steps), problem, model, t, x, p, seed=1)
        variances[steps] = grads.var().item()
        assert r.square().mean() < 2.0 * problem.dim * 0.25**2 / steps
    assert variances[64] < variances[4] / 8 and variances[64] < 0.05 * fk.var().item()
    with torch.no_grad():
        model.theta.fill_(2.0)
    off = make_loss("bsde_grad", 64).residuals(problem, model, t, x, p, torch.Generator().manual_seed(1))
    assert off.square().mean() > 10 * 2.0 * problem.dim * 0.25**2 / 64


@pytest.mark.parametrize("dim", [10, 100])
@pytest.mark.parametrize("loss_name", ["fk", "bsde", "detach", "bsde_grad"])
def test_each_loss_trains_in_10_and_100_dimensions(loss_name, dim):
    """A few Adam steps of each loss lower the relative L1 error against the exact heat solution."""
    torch.manual_seed(0)
    problem = make_problem("heat", dim=dim)
    loss = make_loss(loss_name, 4)
    grad_net = MLP(1 + dim, 32, 2, out_features=dim) if loss.learns_gradient else None
    model = KolmogorovModel.for_problem(MLP(1 + dim, 32, 2), problem, grad_net)
    gen = torch.Generator().manual_seed(0)
    t, x, p = problem.sample(1024, torch.Generator().manual_seed(1))
    exact = problem.exact(t, x, p)

    def error():
        return solution_metrics(model.predict(t, x, p), exact, torch.zeros_like(exact))["relative_l1"]

    before = error()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        value = loss(problem, model, *problem.sample(128, gen), gen)
        value.backward()
        opt.step()
    assert error() < 0.3 * before


def test_multilevel_mlp_shapes_and_levels():
    net = MultilevelMLP(7, levels=3, factor=2)
    assert net(torch.randn(5, 7)).shape == (5,)
    assert sum(p.numel() for p in net.parameters()) > sum(
        p.numel() for p in MultilevelMLP(7, levels=2, factor=2).parameters()
    )


def test_metrics_refuse_to_claim_an_error_below_the_reference():
    ref = torch.linspace(0, 2, 100, dtype=torch.float64)
    se = torch.full_like(ref, 0.01)
    close = solution_metrics(ref + 1e-4, ref, se)
    assert (
        "relative_l1" not in close and close["relative_l1_bound"] > 2 * close["reference_l1"] and close["resolved"] == 0
    )
    far = solution_metrics(ref + 0.5, ref, se)
    assert far["relative_l1"] == pytest.approx((0.5 / (ref + 1)).mean().item()) and far["resolved"] == 1
    exact = solution_metrics(ref + 1e-4, ref, torch.zeros_like(ref))
    assert exact["relative_l1"] > 0 and exact["reference_l1"] == 0


def _tiny(tmp_path, **kolmogorov):
    settings = {
        "problem": "heat",
        "problem_params": {"dim": 4},
        "loss": "bsde",
        "steps": 4,
        "iterations": 4,
        "validation_points": 64,
        "eval_points": 256,
        **kolmogorov,
    }
    config = {
        "seed": 0,
        "data": {"batch_size": 32},
        "model": {"name": "multilevel_mlp", "levels": 2, "factor": 2},
        "train": {"task": "kolmogorov", "epochs": 4, "lr": 3e-3, "threads": 1},
        "kolmogorov": settings,
    }
    path = tmp_path / "kolmogorov.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_stopped_and_resumed_reaches_the_same_weights(tmp_path, monkeypatch):
    config = load_config(_tiny(tmp_path))
    whole, resumed = train_whole_and_resumed(config, tmp_path, KolmogorovTask, monkeypatch)
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)


def test_train_evaluate_report_end_to_end(tmp_path):
    config = _tiny(
        tmp_path,
        problem="basket",
        problem_params={},
        validation_reference_samples=64,
        eval_points=64,
        reference_samples=512,
    )
    run_cli("train", config, "--out", tmp_path / "run")
    out = run_cli("evaluate", tmp_path / "run", "--samples", "48")
    assert "48 held-out points" in out.stdout
    row = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"][0]
    m = row["metrics"]
    assert m["reference_l1"] > 0 and ("relative_l1" in m or "relative_l1_bound" in m)
    assert m["model_seconds"] < m["reference_seconds"]
    assert len(row["error_by_time"]["relative_l1"]) == 10 and "Monte Carlo, 512" in row["reference"]
    run_cli("report", tmp_path / "run")
    for name in ("error_vs_time.png", "slices.png", "validation.png", "report.html"):
        assert (tmp_path / "run" / "report" / name).exists(), name


@pytest.mark.parametrize(
    "name", sorted(n for n, path in shipped_configs().items() if load_config(path).train.task == "kolmogorov")
)
def test_each_shipped_kolmogorov_config_trains(name, tmp_path):
    config = load_config(
        name,
        [
            "train.epochs=1",
            "kolmogorov.iterations=2",
            "data.batch_size=16",
            "kolmogorov.validation_points=16",
            "kolmogorov.validation_reference_samples=16",
            "train.threads=1",
        ],
    )
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(log[-1]["train_loss"]) and math.isfinite(log[-1]["val_relative_l1"])


#: Run under torchrun: train, then each rank saves the weights it ended with (captured where the run wraps
#: its model for DDP), so that the test can compare the ranks.
_DDP_SCRIPT = """
import os, sys
import torch
from oplearn.config import load_config
from oplearn.training import run

wrapped = {}


class Capturing(run.DistributedDataParallel):
    def __init__(self, module, *args, **kwargs):
        super().__init__(module, *args, **kwargs)
        wrapped["model"] = module


run.DistributedDataParallel = Capturing
out = sys.argv[2]
run.train(load_config(sys.argv[1]), out, progress=False)
torch.save(wrapped["model"].state_dict(), os.path.join(out, "rank" + os.environ["RANK"] + ".pt"))
"""


def test_two_gloo_processes_train_the_same_weights_and_the_checkpoint_reloads(tmp_path):
    """``bsde_grad`` (its gradient network is used outside the DDP forward) with batch normalisation on two
    gloo processes under torchrun: the run completes, both ranks end with identical weights, rank 0's
    checkpoint holds its weights and buffers, and it reloads and evaluates."""
    from helpers import SRC

    from oplearn.training.rundir import open_run

    config = _tiny(tmp_path, loss="bsde_grad", validation_points=32)
    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(
        [*cmd, str(script), str(config), str(tmp_path / "ddp")], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    run = open_run(tmp_path / "ddp", "last")
    assert run.epoch == 4 and any(key.startswith("grad_net.") for key in ranks[0])
    # batch-norm statistics of the last batch stay per rank (DDP copies rank 0's before each forward)
    parameters = dict(run.model.named_parameters())
    for key, value in ranks[0].items():
        if key in parameters:
            torch.testing.assert_close(ranks[1][key], value, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(run.model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    log = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert (
        len(log) == 4 and all(math.isfinite(r["train_loss"]) for r in log) and math.isfinite(log[-1]["val_relative_l1"])
    )
    t, x, p = make_problem("heat", dim=4).sample(8, torch.Generator().manual_seed(0))
    assert torch.isfinite(run.model.predict(t, x, p)).all()
