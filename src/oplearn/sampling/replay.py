r"""A prioritised replay buffer of detached paths for off-policy losses.

The log-variance loss is valid on paths of any behaviour process with full support
(:mod:`oplearn.sampling.losses`), so paths simulated by earlier versions of the sampler can be
trained on again. The buffer keeps up to ``capacity`` paths (the oldest overwritten first), each
with a priority, its log-weight :math:`\log w_i` under the sampler that last evaluated it. A draw of
:math:`m` paths is without replacement with probabilities proportional to
:math:`w_i^{1/\tau}` (temperature :math:`\tau`; a large :math:`\tau` draws uniformly), by the
Gumbel-top-:math:`m` trick: the :math:`m` largest keys :math:`\log w_i / \tau + G_i`,
:math:`G_i` standard Gumbel, are a sample of successive draws without replacement. Paths of high
weight are those the current sampler underrepresents (the target's mass it misses), so the
buffer keeps them in the loss after the sampler has moved away from them.

A stored path is every batched tensor of a :class:`~oplearn.sde.solvers.Path` (the batch is
dimension ``-2`` of its states ``(steps + 1, batch, d)``, of the splitting schemes' records
``(steps, o, 3, batch, d)`` and of the target scores of a
:class:`~oplearn.sampling.methods.langevin.ScoredPath` ``(steps, batch, d)``), without its normals
(off-policy densities evaluate the kernels along the path). The storage is created by the first
:meth:`ReplayBuffer.add` and is part of the module's state, so a resumed run continues with the
same buffer.

References
----------
Chen, Richter, Berner, Blessing, Neumann, Anandkumar, "Sequential Controlled Langevin
Diffusions", ICLR 2025 (a prioritised buffer of sub-trajectories for the log-variance loss).
Kool, van Hoof, Welling, "Stochastic beams and where to find them", ICML 2019 (Gumbel-top-k).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.sde import Path


def _batched_fields(path: Path) -> dict[str, torch.Tensor]:
    """The path's batched tensors by name (``states_0``, ``states_1``, ``records``, ...), normals left out."""
    fields = {f"states_{i}": s for i, s in enumerate(path.states)}
    for f in dataclasses.fields(path):
        value = getattr(path, f.name)
        if f.name not in ("times", "states", "noise") and isinstance(value, torch.Tensor):
            fields[f.name] = value
    return fields


def _rebuild(template: Path, fields: dict[str, torch.Tensor]) -> Path:
    """A path of ``template``'s type and times with the batched tensors ``fields``."""
    states = tuple(fields[f"states_{i}"] for i in range(len(template.states)))
    extra = {k: v for k, v in fields.items() if not k.startswith("states_")}
    return dataclasses.replace(template, states=states, noise=None, **extra)


def select_paths(path: Path, index: torch.Tensor) -> Path:
    """The paths ``index (m,)`` of a batch of paths."""
    return _rebuild(path, {k: v.index_select(-2, index) for k, v in _batched_fields(path).items()})


def concat_paths(first: Path, second: Path) -> Path:
    """Two batches of paths on the same time grid as one."""
    a, b = _batched_fields(first), _batched_fields(second)
    return _rebuild(first, {k: torch.cat([a[k], b[k]], -2) for k in a})


class ReplayBuffer(nn.Module):
    """Up to ``capacity`` detached paths with their log-weights as priorities (module docstring)."""

    def __init__(self, capacity: int, temperature: float = 1.0) -> None:
        super().__init__()
        if capacity < 1:
            raise ConfigError(f"replay buffer: capacity must be >= 1 path, got {capacity}")
        if not temperature > 0:
            raise ConfigError(f"replay buffer: temperature must be > 0, got {temperature}")
        self.capacity, self.temperature = int(capacity), float(temperature)
        self.register_buffer("size", torch.zeros((), dtype=torch.long))
        self.register_buffer("position", torch.zeros((), dtype=torch.long))
        self.names: list[str] = []

    def __len__(self) -> int:
        return int(self.size)

    def _allocate(self, fields: dict[str, torch.Tensor], log_w: torch.Tensor) -> None:
        for name, value in fields.items():
            shape = list(value.shape)
            shape[-2] = self.capacity
            self.register_buffer(name, value.new_zeros(shape))
        self.register_buffer("log_w", log_w.new_full((self.capacity,), -torch.inf))
        self.names = list(fields)

    @torch.no_grad()
    def add(self, path: Path, log_w: torch.Tensor) -> None:
        """Store the ``n`` paths of ``path`` with their log-weights ``(n,)`` (non-finite ones are skipped),
        overwriting the oldest when full."""
        keep = torch.isfinite(log_w).nonzero().squeeze(-1)
        fields = {k: v.detach() for k, v in _batched_fields(path).items()}
        if not self.names:
            self._allocate(fields, log_w)
        keep = keep[-self.capacity :]
        slots = (self.position + torch.arange(len(keep), device=keep.device)) % self.capacity
        for name in self.names:
            getattr(self, name).index_copy_(-2, slots.to(fields[name].device), fields[name].index_select(-2, keep))
        self.log_w[slots.to(self.log_w.device)] = log_w.detach()[keep].to(self.log_w.dtype)
        self.position.copy_((self.position + len(keep)) % self.capacity)
        self.size.copy_(torch.clamp(self.size + len(keep), max=self.capacity))

    @torch.no_grad()
    def sample(self, m: int, template: Path, generator: torch.Generator | None = None) -> tuple[Path, torch.Tensor]:
        """``m`` stored paths (at most ``len(self)``) drawn without replacement proportionally to
        :math:`w^{1/\\tau}`, as paths of ``template``'s type and times, and their slots ``(m,)``."""
        m = min(m, len(self))
        if m == 0:
            none = torch.zeros(0, dtype=torch.long, device=template.xs.device)
            return select_paths(template, none), none
        device = self.log_w.device if generator is None else generator.device
        u = torch.rand(len(self), generator=generator, device=device, dtype=torch.float64).to(self.log_w.device)
        keys = self.log_w[: len(self)].double() / self.temperature - torch.log(-torch.log(u))
        slots = torch.topk(keys, m).indices
        fields = {
            name: getattr(self, name).index_select(-2, slots.to(getattr(self, name).device)) for name in self.names
        }
        return _rebuild(template, fields), slots

    @torch.no_grad()
    def update(self, slots: torch.Tensor, log_w: torch.Tensor) -> None:
        """Set the priorities of the paths in ``slots`` to their new log-weights ``(m,)``."""
        if not len(slots):
            return
        self.log_w[slots] = torch.where(torch.isfinite(log_w), log_w.detach(), -torch.inf).to(self.log_w.dtype)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Allocate the storage a saved buffer had before loading it (a fresh buffer has none)."""
        stored = [k[len(prefix) :] for k in state_dict if k.startswith(prefix) and "." not in k[len(prefix) :]]
        fields = [k for k in stored if k not in ("size", "position", "log_w")]
        for name in [*fields, "log_w"] if fields else []:
            self.register_buffer(name, torch.empty_like(state_dict[prefix + name], device=self.size.device))
        if fields:
            self.names = fields
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
