r"""Losses for learning :math:`u(t, x; p) = \mathbb E\,\varphi(X^{x,p}_t)` from simulated paths.

For a point :math:`(t, x, p)` drawn from the box each loss compares the prediction
:math:`\hat u(t, x; p)` with a random target :math:`Y` and minimises :math:`\mathbb E(\hat u - Y)^2`:

================  ==============================================================================
``fk``            Feynman-Kac regression, :math:`Y = \varphi(X_t)`. :math:`\mathbb E[Y] = u`, so the
                  minimiser is the solution, but :math:`\operatorname{Var} Y > 0` at the solution:
                  the gradient's variance does not vanish there.
``bsde``          :math:`Y = \varphi(X_t) - \int_0^t \nabla_x \hat u(t - s, X_s)\cdot\sigma(X_s)\,dW_s`,
                  differentiated through the stochastic integral. By Ito's formula
                  :math:`Y = u(t, x)` almost surely when :math:`\hat u = u`: the loss and its
                  gradient vanish pathwise at the solution (up to time discretisation), so their
                  variance does too.
``detach``        The same target with the integral held fixed (no gradient through it): the
                  integral is a control variate for the Feynman-Kac target, unbiased
                  (:math:`\mathbb E\int \cdot\,dW = 0`) whatever :math:`\hat u` is, and exact at the solution.
================  ==============================================================================

The integral is the Ito sum :math:`\sum_k \nabla_x \hat u(t - s_k, X_{s_k}) \cdot \sigma(X_{s_k})\,\Delta W_k`
over the Euler-Maruyama path of :meth:`KolmogorovPDE.paths` (``steps`` equal steps of :math:`t / N`,
:mod:`oplearn.sde`); the gradient terms are evaluated in evaluation mode (batch normalisation with
running statistics, so that samples stay independent), as the prediction is in training mode.
``fk`` draws :math:`X_t` exactly where the problem knows its law, else along the same kind of path.

Shapes: ``t (batch,)``, ``x (batch, d)``, ``p (batch, P)``; :meth:`KolmogorovLoss.residuals` returns
:math:`\hat u - Y` ``(batch,)``.

References
----------
Beck, Becker, Grohs, Jaafari, Jentzen, "Solving the Kolmogorov PDE by means of deep learning",
2018 (Feynman-Kac regression). Berner, Dablander, Grohs, NeurIPS 2020 (parametric families).
Richter, Berner, "Robust SDE-Based Variational Formulations for Solving Linear PDEs via Deep
Learning", ICML 2022 (the BSDE loss, its zero-variance property and the detached variant).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.kolmogorov.problems import KolmogorovPDE
from oplearn.sde import Path


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in evaluation mode inside the block, its previous mode restored after."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)


def stochastic_integral(
    problem: KolmogorovPDE, model: nn.Module, t: torch.Tensor, p: torch.Tensor, path: Path, create_graph: bool
) -> torch.Tensor:
    r""":math:`\sum_k \nabla_x \hat u(t - s_k, X_k)\cdot\sigma(X_k)\,\Delta W_k` ``(batch,)`` along ``path``
    (``(steps + 1, batch)`` times from 0 to ``t``), one batched gradient call for all steps."""
    steps, batch = path.steps, len(t)
    xs = path.xs[:-1].reshape(steps * batch, -1).detach().requires_grad_(True)
    remaining = (t[None, :] - path.times[:-1]).reshape(-1)
    params = p.repeat(steps, 1)
    with torch.enable_grad(), evaluation_mode(model):
        u = model(remaining, xs, params)
        (grad,) = torch.autograd.grad(u.sum(), xs, create_graph=create_graph)
    dw = path.increments().reshape(steps * batch, -1)
    sigma_dw = problem.noise.apply(problem.diffusion(xs.detach(), params), dw)
    return (grad * sigma_dw).sum(-1).view(steps, batch).sum(0)


class KolmogorovLoss:
    """Mean squared residual :math:`\\mathbb E(\\hat u - Y)^2` (module docstring)."""

    name: str = ""

    def __init__(self, steps: int = 25) -> None:
        if steps < 1:
            raise ConfigError(f"kolmogorov loss: steps must be >= 1, got {steps}")
        self.steps = steps

    def target(
        self,
        problem: KolmogorovPDE,
        model: nn.Module,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """The random target :math:`Y` ``(batch,)``."""
        raise NotImplementedError

    def residuals(
        self,
        problem: KolmogorovPDE,
        model: nn.Module,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        generator: torch.Generator | None,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        """:math:`\\hat u - Y` ``(batch,)``; ``net`` (default ``model``) predicts, e.g. a DDP wrapper."""
        return (net or model)(t, x, p) - self.target(problem, model, t, x, p, generator)

    def __call__(
        self,
        problem: KolmogorovPDE,
        model: nn.Module,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        generator: torch.Generator | None = None,
        net: nn.Module | None = None,
    ) -> torch.Tensor:
        return self.residuals(problem, model, t, x, p, generator, net).square().mean()


class FeynmanKac(KolmogorovLoss):
    """:math:`Y = \\varphi(X_t)`."""

    name = "fk"

    def target(
        self,
        problem: KolmogorovPDE,
        model: nn.Module,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        with torch.no_grad():
            return problem.initial(problem.end_points(t, x, p, self.steps, generator), p)


class BSDE(KolmogorovLoss):
    """:math:`Y = \\varphi(X_t) - \\int_0^t \\nabla\\hat u\\cdot\\sigma\\,dW`, differentiated through the integral."""

    name = "bsde"
    create_graph = True

    def target(
        self,
        problem: KolmogorovPDE,
        model: nn.Module,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        with torch.no_grad():
            path = problem.paths(t, x, p, self.steps, generator)
            end = problem.initial(path.final, p)
        return end - stochastic_integral(problem, model, t, p, path, self.create_graph)


class DetachedBSDE(BSDE):
    """The BSDE target with the integral held fixed (a control variate of the Feynman-Kac target)."""

    name = "detach"
    create_graph = False


LOSSES: dict[str, type[KolmogorovLoss]] = {cls.name: cls for cls in (FeynmanKac, BSDE, DetachedBSDE)}


def make_loss(name: str, steps: int) -> KolmogorovLoss:
    if name not in LOSSES:
        raise ConfigError(f"unknown Kolmogorov loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](steps)
