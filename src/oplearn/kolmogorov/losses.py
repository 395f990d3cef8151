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
``bsde_grad``     :math:`Y = \varphi(X_t) - \int_0^t \hat z(t - s, X_s)\cdot\sigma(X_s)\,dW_s` with a second
                  network :math:`\hat z \approx \nabla_x u` (``KolmogorovModel.grad_net``), both trained
                  on :math:`\mathbb E(\hat u - Y)^2`, differentiated through the integral. The residual
                  vanishes pathwise at :math:`(\hat u, \hat z) = (u, \nabla_x u)`, so this loss keeps the
                  BSDE loss's zero variance at the solution, but needs no derivative of the network
                  (no double backward pass): cheaper steps, more parameters, a gradient to learn.
================  ==============================================================================

``bsde``, ``detach`` and ``bsde_grad`` are the variance-reduced losses: at the solution their
residual, and so every per-sample gradient, is pure time-discretisation error, with variance
:math:`O(1/N)`; the Feynman-Kac residual :math:`u - \varphi(X_t)` keeps its variance. They differ
away from the solution: ``detach`` follows the Feynman-Kac gradient in expectation, ``bsde``
and ``bsde_grad`` minimise the squared BSDE residual. (The same gradient as ``bsde`` can be
accumulated with less memory by a backward pass per time step; paths here are batched over their
steps, one gradient call for all of them, so that form would save nothing and is not offered.)

The integral is the Ito sum :math:`\sum_k \nabla_x \hat u(t - s_k, X_{s_k}) \cdot \sigma(X_{s_k})\,\Delta W_k`
over the Euler-Maruyama path of :meth:`KolmogorovPDE.paths` (``steps`` equal steps of :math:`t / N`,
:mod:`oplearn.sde`); the model's gradient terms are evaluated in evaluation mode (batch normalisation with
running statistics, so that samples stay independent) while the prediction (and a gradient
network, which has no other pass) is in training mode.
``fk`` draws :math:`X_t` exactly where the problem knows its law, else along the same kind of path.

Shapes: ``t (batch,)``, ``x (batch, d)``, ``p (batch, P)``; :meth:`KolmogorovLoss.residuals` returns
:math:`\hat u - Y` ``(batch,)``.

References
----------
Beck, Becker, Grohs, Jaafari, Jentzen, "Solving the Kolmogorov PDE by means of deep learning",
2018 (Feynman-Kac regression). Berner, Dablander, Grohs, NeurIPS 2020 (parametric families).
Richter, Berner, "Robust SDE-Based Variational Formulations for Solving Linear PDEs via Deep
Learning", ICML 2022 (the BSDE loss, its zero-variance property, the detached variant and the
variant with a gradient network).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.kolmogorov.problems import KolmogorovPDE
from oplearn.sde import Path

Integrand = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in evaluation mode inside the block, its previous mode restored after."""
    training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(training)


def model_gradient(
    model: nn.Module, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, create_graph: bool
) -> torch.Tensor:
    r""":math:`\nabla_x \hat u(t, x; p)` ``(batch, d)`` by automatic differentiation, in evaluation mode."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad(), evaluation_mode(model):
        (grad,) = torch.autograd.grad(model(t, x, p).sum(), x, create_graph=create_graph)
    return grad


def stochastic_integral(
    problem: KolmogorovPDE, integrand: Integrand, t: torch.Tensor, p: torch.Tensor, path: Path
) -> torch.Tensor:
    r""":math:`\sum_k z(t - s_k, X_k)\cdot\sigma(X_k)\,\Delta W_k` ``(batch,)`` along ``path`` (``(steps + 1, batch)``
    times from 0 to ``t``), ``integrand(t, x, p) -> (n, d)`` called once on all steps together."""
    steps, batch = path.steps, len(t)
    xs = path.xs[:-1].reshape(steps * batch, -1).detach()
    remaining = (t[None, :] - path.times[:-1]).reshape(-1)
    params = p.repeat(steps, 1)
    z = integrand(remaining, xs, params)
    dw = path.increments().reshape(steps * batch, -1)
    sigma_dw = problem.noise.apply(problem.diffusion(xs, params), dw)
    return (z * sigma_dw).sum(-1).view(steps, batch).sum(0)


class KolmogorovLoss:
    """Mean squared residual :math:`\\mathbb E(\\hat u - Y)^2` (module docstring)."""

    name: str = ""
    #: Whether the loss trains a gradient network beside the solution (``KolmogorovModel.grad_net``).
    learns_gradient: bool = False

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
        return end - stochastic_integral(problem, self.integrand(model), t, p, path)

    def integrand(self, model: nn.Module) -> Integrand:
        """:math:`z(t, x, p)` of the stochastic integral: here the model's own gradient."""
        return lambda t, x, p: model_gradient(model, t, x, p, self.create_graph)


class DetachedBSDE(BSDE):
    """The BSDE target with the integral held fixed (a control variate of the Feynman-Kac target)."""

    name = "detach"
    create_graph = False


class LearnedGradientBSDE(BSDE):
    r"""The BSDE target with a learned gradient :math:`\hat z` in the integral, trained jointly (no double backward)."""

    name = "bsde_grad"
    learns_gradient = True

    def integrand(self, model: nn.Module) -> Integrand:
        # in training mode like the prediction: the gradient network has no other forward pass
        return model.gradient


LOSSES: dict[str, type[KolmogorovLoss]] = {
    cls.name: cls for cls in (FeynmanKac, BSDE, DetachedBSDE, LearnedGradientBSDE)
}


def make_loss(name: str, steps: int) -> KolmogorovLoss:
    if name not in LOSSES:
        raise ConfigError(f"unknown Kolmogorov loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](steps)
