r"""Neural walk-on-spheres: a network :math:`u_\theta` fitted to one bootstrapped walk step, in any dimension.

For :math:`\Delta u = f` in :math:`\Omega \subset \mathbb{R}^d`, :math:`u = g` on the boundary, one
walk step from :math:`x` (:func:`oplearn.wos.walk.sphere_step`) gives
:math:`u(x) = \mathbb{E}[u(y) + s]`, :math:`y` uniform on the largest sphere around :math:`x` and
:math:`s = -\frac{R^2}{2d} f(z)` the source term. The network itself stands in for :math:`u(y)`:

.. math::

    \mathcal{L}(\theta) = \mathbb{E}_x \big(u_\theta(x) - \mathrm{sg}[\tilde u(y)] - s\big)^2
        + \lambda \, \mathbb{E}_{x_b} \big(u_\theta(x_b) - g(x_b)\big)^2,
    \qquad \tilde u(y) = \begin{cases} g(y) & |\phi(y)| < \varepsilon \\ u_\theta(y) & \text{else,} \end{cases}

with :math:`\mathrm{sg}` stop-gradient, :math:`x` uniform in :math:`\Omega` and :math:`x_b` the
projections :math:`x - \phi(x) \nabla\phi(x)` of interior points onto the boundary (exact for
exact signed distances). The minimiser of the first term is the mean-value fixed point, so
boundary information propagates inwards one sphere per bootstrap. No derivative of the
network is taken and the cost per step does not depend on the walk length, which makes it
usable in 10 or more dimensions.

References
----------
Nam, Berner, Anandkumar, Solving Poisson Equations using Neural Walk-on-Spheres, ICML 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from oplearn.progress import progress as progress_bar
from oplearn.wos.domains import Domain
from oplearn.wos.walk import DirichletProblem, sphere_step


class MLP(nn.Module):
    """A fully connected network ``(n, d) -> (n,)`` with ``depth`` hidden layers of ``width`` (SiLU)."""

    def __init__(self, dim: int, width: int = 64, depth: int = 3) -> None:
        super().__init__()
        layers, last = [], dim
        for _ in range(depth):
            layers += [nn.Linear(last, width), nn.SiLU()]
            last = width
        self.net = nn.Sequential(*layers, nn.Linear(last, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def project_to_boundary(domain: Domain, x: torch.Tensor) -> torch.Tensor:
    r"""The closest boundary points :math:`x - \phi(x) \nabla \phi(x)`: ``(n, d) -> (n, d)``."""
    x = x.detach().requires_grad_(True)
    phi = domain.sdf(x)
    (grad,) = torch.autograd.grad(phi.sum(), x)
    return (x - phi[:, None] * grad).detach()


def neural_wos_loss(
    net: nn.Module,
    problem: DirichletProblem,
    x: torch.Tensor,
    generator: torch.Generator | None,
    epsilon: float = 1e-3,
    boundary_weight: float = 1.0,
) -> torch.Tensor:
    """The loss of the module docstring at interior points ``x (n, d)`` (their projections give ``x_b``)."""
    batch = problem.as_batch()
    group = torch.zeros(len(x), dtype=torch.long, device=x.device)
    radius = -problem.domain.sdf(x)
    y, source_term = sphere_step(batch, x, radius, group, generator)
    with torch.no_grad():
        hit = -problem.domain.sdf(y) < epsilon
        u_next = torch.where(hit, problem.boundary(y), net(y))
    interior = (net(x) - (u_next + source_term)).square().mean()
    xb = project_to_boundary(problem.domain, x)
    boundary = (net(xb) - problem.boundary(xb)).square().mean()
    return interior + boundary_weight * boundary


@dataclass(frozen=True)
class NeuralWoSConfig:
    """Optimisation of :func:`neural_wos_loss`: Adam with a cosine learning rate over ``steps``."""

    steps: int = 2000
    batch: int = 512
    lr: float = 2e-3
    epsilon: float = 1e-3
    boundary_weight: float = 1.0
    seed: int = 0


def train_neural_wos(
    net: nn.Module, problem: DirichletProblem, config: NeuralWoSConfig = NeuralWoSConfig(), progress: bool = False
) -> list[float]:
    """Fit ``net`` (``(n, d) -> (n,)``) to ``problem`` in float32; returns the loss of every step."""
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    losses = []
    for _ in progress_bar(range(config.steps), desc="neural wos", enabled=progress):
        x = problem.domain.sample(config.batch, generator, dtype=torch.float32)
        loss = neural_wos_loss(net, problem, x, generator, config.epsilon, config.boundary_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses
