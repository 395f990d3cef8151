r"""The target of a sampler: an unnormalised density :math:`\gamma` on :math:`\mathbb R^d`,
:math:`\pi = \gamma / Z`.

A :class:`Target` gives :meth:`~Target.log_density` (:math:`\log\gamma`, checked and counted),
its :meth:`~Target.score` :math:`\nabla\log\gamma`, and where known the exact ``log_Z``, exact
samples (:meth:`~Target.sample`) and a mode assignment (:meth:`~Target.modes`) for mode
coverage. Every target counts the points at which its density was evaluated
(``evaluations``), so that methods can be compared at equal target-evaluation budgets.

Shapes: points ``(batch, dim)``; log-densities ``(batch,)``.
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.errors import ConfigError, DataError


class Target(nn.Module):
    """An unnormalised density (module docstring); subclasses define :meth:`unnormalized_log_density`."""

    #: Registry name (``target.name`` in a config).
    name: str = "target"
    #: Exact log normalising constant, ``None`` when unknown.
    log_Z: float | None = None

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"target: dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.evaluations = 0

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\gamma(x)`: ``(batch, dim) -> (batch,)``."""
        raise NotImplementedError

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\gamma(x)`, refusing points of the wrong shape and non-finite values (one-line
        :class:`~oplearn.errors.DataError`), counting the points evaluated."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"target '{self.name}': points must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        self.evaluations += x.shape[0]
        value = self.unnormalized_log_density(x)
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            first = x[bad][0, : min(self.dim, 4)].tolist()
            raise DataError(
                f"target '{self.name}': log-density is NaN or infinite at {int(bad.sum())} of {x.shape[0]} points "
                f"(first at x[:4] = {[round(v, 4) for v in first]}); the samples have diverged or the target is misdefined"
            )
        return value

    def log_density_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\log\\gamma(x)` and :math:`\\nabla\\log\\gamma(x)` from one evaluation (automatic
        differentiation): ``(batch, dim) -> (batch,), (batch, dim)``. Both differentiable in ``x``
        (the score through Hessian-vector products) when ``x`` requires gradients."""
        differentiable = x.requires_grad and torch.is_grad_enabled()
        with torch.enable_grad():
            y = x if differentiable else x.detach().requires_grad_(True)
            value = self.log_density(y)
            (grad,) = torch.autograd.grad(value.sum(), y, create_graph=differentiable)
        return (value if differentiable else value.detach()), grad

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\nabla\\log\\gamma(x)` (:meth:`log_density_and_score`): ``(batch, dim) -> (batch, dim)``."""
        return self.log_density_and_score(x)[1]

    @property
    def has_samples(self) -> bool:
        """Whether :meth:`sample` draws exact samples."""
        return type(self).sample is not Target.sample

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples ``(n, dim)`` of :math:`\\pi`."""
        raise ConfigError(
            f"target '{self.name}' has no exact sampler (needed for EUBO, Sinkhorn and MMD); use a target with samples"
        )

    def modes(self, x: torch.Tensor) -> torch.Tensor | None:
        """Mode labels ``(batch, groups)`` (e.g. the mixture component, or the well of each
        double-well coordinate), or ``None`` when the target defines no modes."""
        return None

    def mode_weights(self) -> torch.Tensor | None:
        """The target's exact mode probabilities ``(groups, modes)`` for :meth:`modes`."""
        return None

    def extra_repr(self) -> str:
        return f"dim={self.dim}, log_Z={self.log_Z}"
