r"""Local search: off-policy training on backward paths from a buffer of MCMC-refined samples.

A sampler trained on its own paths only learns about the regions it already visits. Local
search feeds it points it would not draw itself: training steps alternate between

* *forward steps* (even steps): paths of the exploring behaviour process, whose end points
  enter the buffer of the sampler's samples with their target log-densities;
* *backward steps* (odd steps): ``n`` points drawn from the buffer of *refined* samples and
  backward paths of the sampler's backward process :math:`\mathbb P_B` ending at them,
  detached. The log-variance and trajectory-balance losses hold for paths of any measure with
  full support (:mod:`oplearn.sampling.losses`), so both kinds of path train the same loss.

Every ``cycle`` steps (and whenever the refined buffer is empty) ``n`` points drawn from the
sampler's buffer are moved by ``mcmc_steps`` MALA moves on the target
(:class:`oplearn.sampling.mcmc.MetropolisKernel`); every point's position after each of the last
``mcmc_steps - burn_in`` moves enters the refined buffer. The MALA step size :math:`\epsilon`
adapts after every move, :math:`\epsilon \leftarrow 1.01\,\epsilon` when the fraction accepted
is above ``target_acceptance`` and :math:`\epsilon / 1.01` otherwise, and is kept from one
refinement to the next.

Draws from either buffer are rank-prioritised: the point of rank :math:`r_i` (0 the highest
target log-density) among the :math:`N` stored is drawn, with replacement, with probability
proportional to :math:`1 / (kN + r_i)`, :math:`k` = ``rank_weight`` (small :math:`k`: steep
priority).

Both buffers are fixed-size rings (the oldest points overwritten first) held as module buffers,
so checkpoints carry them and a resumed run continues exactly. Under data-parallel training each
process keeps its own buffers.

Shapes: points ``(n, dim)``; log-densities ``(n,)``.

References
----------
Sendera, Kim, Mittal, Lemos, Scimeca, Rector-Brooks, Adam, Bengio, Malkin, "Improved off-policy
training of diffusion samplers", NeurIPS 2024 (local search with a rank-prioritised buffer and
backward training; code ``GFNOrg/gfn-diffusion``). Tripp, Daxberger, Hernandez-Lobato,
"Sample-efficient optimization in the latent space of deep generative models via weighted
retraining", NeurIPS 2020 (rank-based weights).
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.sampling.mcmc import MetropolisKernel
from oplearn.sampling.methods.base import Sampler
from oplearn.sampling.targets.base import Target


class SampleBuffer(nn.Module):
    """A ring of up to ``capacity`` points ``(dim,)`` with their target log-densities (module docstring)."""

    def __init__(self, capacity: int, dim: int) -> None:
        super().__init__()
        if capacity < 1:
            raise ConfigError(f"local search: buffer capacity must be >= 1 point, got {capacity}")
        self.capacity = int(capacity)
        self.register_buffer("points", torch.zeros(self.capacity, dim))
        self.register_buffer("log_density", torch.full((self.capacity,), -torch.inf))
        self.register_buffer("size", torch.zeros((), dtype=torch.long))
        self.register_buffer("position", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.size)

    @torch.no_grad()
    def add(self, x: torch.Tensor, log_density: torch.Tensor) -> None:
        """Store the points ``x (n, dim)`` (the last ``capacity`` of them), overwriting the oldest."""
        x, log_density = x[-self.capacity :], log_density[-self.capacity :]
        slots = (self.position + torch.arange(len(x), device=self.points.device)) % self.capacity
        self.points[slots] = x.to(self.points)
        self.log_density[slots] = log_density.to(self.log_density)
        self.position.copy_((self.position + len(x)) % self.capacity)
        self.size.copy_(torch.clamp(self.size + len(x), max=self.capacity))

    @torch.no_grad()
    def draw(self, n: int, rank_weight: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` stored points drawn with replacement with probabilities :math:`\\propto 1 / (kN + r_i)`."""
        size = len(self)
        if size == 0:
            raise ValueError("local search: draw from an empty buffer")
        order = torch.argsort(self.log_density[:size], descending=True)
        ranks = torch.empty_like(order)
        ranks[order] = torch.arange(size, device=order.device)
        weights = 1.0 / (rank_weight * size + ranks.double())
        device = self.points.device if generator is None else generator.device
        index = torch.multinomial(weights.to(device), n, replacement=True, generator=generator)
        return self.points[index.to(self.points.device)]


class LocalSearch(nn.Module):
    """Alternating forward and backward training steps over two buffers (module docstring).

    ``capacity`` points per buffer, ``rank_weight`` the priority's :math:`k`, a refinement every
    ``cycle`` steps of ``mcmc_steps`` MALA moves of which the first ``burn_in`` are not kept,
    starting at step size ``step_size`` and adapted towards ``target_acceptance``.
    """

    def __init__(
        self,
        dim: int,
        capacity: int = 20000,
        rank_weight: float = 0.01,
        cycle: int = 100,
        mcmc_steps: int = 200,
        burn_in: int = 100,
        step_size: float = 0.1,
        target_acceptance: float = 0.574,
    ) -> None:
        super().__init__()
        if not rank_weight > 0:
            raise ConfigError(f"local search: rank_weight must be > 0, got {rank_weight}")
        if cycle < 2:
            raise ConfigError(f"local search: cycle must be >= 2 steps, got {cycle}")
        if not 0 <= burn_in < mcmc_steps:
            raise ConfigError(f"local search: need 0 <= burn_in < mcmc_steps, got {burn_in} and {mcmc_steps}")
        if not step_size > 0:
            raise ConfigError(f"local search: step_size must be > 0, got {step_size}")
        if not 0 < target_acceptance < 1:
            raise ConfigError(f"local search: target_acceptance must be in (0, 1), got {target_acceptance}")
        self.rank_weight, self.cycle = float(rank_weight), int(cycle)
        self.mcmc_steps, self.burn_in, self.target_acceptance = int(mcmc_steps), int(burn_in), float(target_acceptance)
        self.samples = SampleBuffer(capacity, dim)
        self.refined = SampleBuffer(capacity, dim)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("step_size", torch.tensor(float(step_size), dtype=torch.float64))
        self.kernel = MetropolisKernel("mala")

    @torch.no_grad()
    def refine(self, target: Target, x: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """Move ``x (n, dim)`` by the MALA moves, keep the points after the burn-in in the refined
        buffer and return the mean fraction accepted."""
        cache = target.log_density_and_score(x)
        accepted = []
        for move in range(self.mcmc_steps):
            x, cache, fraction = self.kernel.step(
                float(self.step_size), x, cache, target.log_density_and_score, lambda _, lg, s: (lg, s), generator
            )
            self.step_size.mul_(1.01 if fraction > self.target_acceptance else 1 / 1.01)
            accepted.append(fraction)
            if move >= self.burn_in:
                self.refined.add(x, cache[0])
        return sum(accepted) / len(accepted)

    def training_log_weights(
        self, sampler: Sampler, n: int, generator: torch.Generator | None, exploration: float
    ) -> torch.Tensor:
        """Log-weights ``(n,)`` of this step's detached paths: forward (even steps) or backward from
        refined samples (odd steps)."""
        step = int(self.step)
        self.step.add_(1)
        if step % 2 == 0 or len(self.samples) == 0:
            with torch.no_grad():
                path = sampler.simulate(n, generator, exploration)
                x = path.final
                self.samples.add(x, sampler.target.log_density(x))
            return sampler.log_weights(path, on_policy=False)
        if step % self.cycle < 2 or len(self.refined) == 0:
            self.refine(sampler.target, self.samples.draw(n, self.rank_weight, generator), generator)
        with torch.no_grad():
            path = sampler.simulate_backward(self.refined.draw(n, self.rank_weight, generator), generator)
        return sampler.log_weights(path, on_policy=False)
