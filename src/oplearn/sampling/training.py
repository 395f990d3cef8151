"""A minimal optimisation loop for samplers, for tests, benchmarks and the training task.

Each iteration draws ``batch_size`` paths with a generator derived from ``(seed, iteration)``
(:mod:`oplearn.seeding`), so that a run is reproducible and can be resumed at any iteration.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from oplearn.errors import TrainingDiverged
from oplearn.sampling.losses import SamplerLoss
from oplearn.sampling.methods.base import Sampler
from oplearn.sampling.methods.scld import SCLD
from oplearn.seeding import generator


def optimizer_for(sampler: Sampler | SCLD, loss: SamplerLoss, lr: float) -> torch.optim.Optimizer:
    """Adam over the sampler's and the loss's parameters (e.g. trajectory balance's log Z)."""
    return torch.optim.Adam([*sampler.parameters(), *loss.parameters()], lr=lr)


def train_step(
    sampler: Sampler | SCLD,
    loss: SamplerLoss,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    seed: int,
    iteration: int,
    clip: float = 1.0,
) -> dict[str, float]:
    """One optimisation step; raises :class:`~oplearn.errors.TrainingDiverged` on a non-finite loss."""
    g = generator(seed, iteration, device=sampler.device)
    optimizer.zero_grad(set_to_none=True)
    value, log_w = loss(sampler, batch_size, g)
    if not math.isfinite(float(value.detach())):
        raise TrainingDiverged(
            f"sampler training: the loss became {float(value.detach())} at iteration {iteration}; lower the learning rate"
        )
    value.backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], clip)
    optimizer.step()
    w = log_w.detach()
    return {"loss": float(value.detach()), "elbo": float(w.sum(0).mean()) if w.ndim > 1 else float(w.mean())}


def train_sampler(
    sampler: Sampler | SCLD,
    loss: SamplerLoss,
    iterations: int,
    batch_size: int,
    lr: float = 1e-3,
    seed: int = 0,
    callback: Callable[[int, dict], None] | None = None,
) -> list[dict[str, float]]:
    """``iterations`` steps of Adam; returns the per-step records."""
    optimizer = optimizer_for(sampler, loss, lr)
    history = []
    for it in range(iterations):
        record = train_step(sampler, loss, optimizer, batch_size, seed, it)
        history.append(record)
        if callback is not None:
            callback(it, record)
    return history
