r"""The Kolmogorov problem object shared by losses, metrics, references and tests.

A parametric family of linear parabolic (Kolmogorov) PDEs on :math:`[0, T] \times \mathbb R^d`,

.. math::

    \partial_t u(t, x; p) = \tfrac12 \operatorname{tr}\!\big(\sigma\sigma^\top(x; p)\,\nabla^2_x u\big)
        + \mu(x; p) \cdot \nabla_x u, \qquad u(0, x; p) = \varphi(x; p),

whose solution is the Feynman-Kac expectation :math:`u(t, x; p) = \mathbb E\,\varphi(X^{x,p}_t; p)`
over the SDE :math:`dX_s = \mu(X_s; p)\,ds + \sigma(X_s; p)\,dW_s`, :math:`X_0 = x`. Terminal
value problems :math:`\partial_s v + \mathcal L v = 0`, :math:`v(T) = \varphi` with time-homogeneous
coefficients are the same family in the time to go, :math:`v(s, x) = u(T - s, x)`.

Learning draws :math:`(t, x, p)` uniformly from the box :math:`[0, T] \times` ``x_box`` :math:`\times`
the parameter boxes. Parameters are one flat ``(batch, P)`` tensor, the blocks of
``KolmogorovPDE.parameters`` (:class:`ParameterBox` blocks, named, shaped, each with its interval) concatenated in order.

Shapes: ``t (batch,)``, ``x (batch, d)``, ``p (batch, P)``; values ``(batch,)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch

from oplearn.errors import ConfigError
from oplearn.sde import EulerMaruyama, ItoSDE, Noise, Path, UniformGrid, solve


@dataclass(frozen=True)
class ParameterBox:
    """One block of the parameters: ``shape`` entries drawn uniformly from ``[low, high]``."""

    name: str
    shape: tuple[int, ...]
    low: float
    high: float

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Reference(NamedTuple):
    """Reference values ``(n,)`` and their standard errors ``(n,)`` (zero for a closed form)."""

    values: torch.Tensor
    stderr: torch.Tensor


class KolmogorovPDE(ABC):
    """A parametric Kolmogorov family (module docstring). Subclasses give the coefficients."""

    #: The config name (``kolmogorov.problem``).
    name: ClassVar[str]
    #: Noise structure of :meth:`diffusion` (:mod:`oplearn.sde.noise`).
    noise: Noise
    #: Time steps of the Euler-Maruyama reference where the law of :math:`X_t` is not known.
    reference_steps: ClassVar[int] = 25

    def __init__(
        self, dim: int, x_box: tuple[float, float], parameters: tuple[ParameterBox, ...] = (), horizon: float = 1.0
    ) -> None:
        if dim < 1:
            raise ConfigError(f"Kolmogorov problem '{self.name}': dim must be >= 1, got {dim}")
        self.dim, self.x_box, self.parameters, self.horizon = (
            int(dim),
            (float(x_box[0]), float(x_box[1])),
            tuple(parameters),
            float(horizon),
        )

    # -- coefficients -------------------------------------------------------------------------
    @abstractmethod
    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r""":math:`\mu(x; p)`: ``(batch, d)``."""

    @abstractmethod
    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r""":math:`\sigma(x; p)` in the shape of :attr:`noise`."""

    @abstractmethod
    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r""":math:`\varphi(x; p)`: ``(batch,)``."""

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor | None:
        """The closed-form solution ``(batch,)``, or ``None`` when there is none (then :meth:`reference`
        estimates it)."""
        return None

    def sample_end(
        self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor | None:
        r"""An exact draw of :math:`X_t^{x,p}` ``(batch, d)`` where its law is known, else ``None``."""
        return None

    @property
    def has_exact(self) -> bool:
        """Whether :meth:`exact` is a closed form (else references are Monte-Carlo estimates)."""
        return type(self).exact is not KolmogorovPDE.exact

    # -- the SDE and sampling -----------------------------------------------------------------
    def sde(self, p: torch.Tensor) -> ItoSDE:
        """The SDE of the parameters ``p (batch, P)`` (time-homogeneous: the time argument is unused)."""
        return ItoSDE(lambda s, x: self.drift(x, p), lambda s, x: self.diffusion(x, p), self.noise)

    def paths(
        self,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        steps: int,
        generator: torch.Generator | None,
        keep_path: bool = True,
    ) -> Path:
        """Euler-Maruyama paths of :math:`X^{x,p}` over ``[0, t]`` per sample, ``steps`` equal steps
        (:func:`oplearn.sde.solve`, Brownian normals kept)."""
        times = UniformGrid(torch.zeros_like(t), t).times(steps, dtype=x.dtype, device=x.device)
        return solve(
            self.sde(p), x, times, EulerMaruyama(), generator=generator, keep_path=keep_path, keep_noise=keep_path
        )

    def end_points(
        self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, steps: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        r""":math:`X_t^{x,p}` ``(batch, d)``: exact where the law is known, else Euler-Maruyama with ``steps`` steps."""
        end = self.sample_end(t, x, p, generator)
        return end if end is not None else self.paths(t, x, p, steps, generator, keep_path=False).final

    @property
    def n_parameters(self) -> int:
        return sum(b.size for b in self.parameters)

    def sample_parameters(
        self,
        n: int,
        generator: torch.Generator | None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """``n`` parameter vectors ``(n, P)`` uniform in the boxes."""
        blocks = [
            b.low + (b.high - b.low) * torch.rand(n, b.size, generator=generator, dtype=dtype, device=device)
            for b in self.parameters
        ]
        return torch.cat(blocks, 1) if blocks else torch.zeros(n, 0, dtype=dtype, device=device)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` points ``(t (n,), x (n, d), p (n, P))`` uniform in the box, ``t`` in ``(0, T]``."""
        t = self.horizon * (1 - torch.rand(n, generator=generator, dtype=dtype, device=device))
        lo, hi = self.x_box
        x = lo + (hi - lo) * torch.rand(n, self.dim, generator=generator, dtype=dtype, device=device)
        return t, x, self.sample_parameters(n, generator, dtype, device)

    def block(self, p: torch.Tensor, name: str) -> torch.Tensor:
        """The parameter block ``name`` of ``p (batch, P)``, shaped ``(batch, *shape)``."""
        start = 0
        for b in self.parameters:
            if b.name == name:
                return p[:, start : start + b.size].reshape(p.shape[0], *b.shape)
            start += b.size
        raise KeyError(name)

    def centre(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The centre of the box: ``x (d,)`` and ``p (P,)`` (slices in reports run through it)."""
        x = torch.full((self.dim,), sum(self.x_box) / 2)
        p = (
            torch.cat([torch.full((b.size,), (b.low + b.high) / 2) for b in self.parameters])
            if self.parameters
            else torch.zeros(0)
        )
        return x, p

    def standardisation(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation ``(1 + d + P,)`` of the uniform inputs ``[t, x, p]`` (a
        constant block gets standard deviation 1)."""
        boxes = (
            [(0.0, self.horizon, 1)] + [(*self.x_box, self.dim)] + [(b.low, b.high, b.size) for b in self.parameters]
        )
        mean = torch.cat([torch.full((n,), (lo + hi) / 2) for lo, hi, n in boxes])
        std = torch.cat([torch.full((n,), (hi - lo) / math.sqrt(12) if hi > lo else 1.0) for lo, hi, n in boxes])
        return mean, std

    # -- references ---------------------------------------------------------------------------
    @torch.no_grad()
    def reference(
        self,
        t: torch.Tensor,
        x: torch.Tensor,
        p: torch.Tensor,
        samples: int = 65536,
        generator: torch.Generator | None = None,
        rows: int = 2**21,
    ) -> Reference:
        r"""The solution at ``n`` points: the closed form where there is one, else the Monte-Carlo
        mean of ``samples`` draws of :math:`\varphi(X_t)` per point (exact law or
        :attr:`reference_steps` Euler-Maruyama steps, in float64) with its standard error.
        Points are processed in chunks of at most ``rows`` draws."""
        exact = self.exact(t, x, p)
        if exact is not None:
            return Reference(exact, torch.zeros_like(exact))
        values, errors = [], []
        chunk = max(1, rows // samples)
        for i in range(0, len(t), chunk):
            tc, xc, pc = (v[i : i + chunk].double() for v in (t, x, p))
            n = len(tc)
            rep = lambda v: v.repeat_interleave(samples, 0)
            end = self.end_points(rep(tc), rep(xc), rep(pc), self.reference_steps, generator)
            y = self.initial(end, rep(pc)).view(n, samples)
            values.append(y.mean(1))
            errors.append(y.std(1) / math.sqrt(samples))
        return Reference(torch.cat(values).to(t.dtype), torch.cat(errors).to(t.dtype))

    def describe(self) -> str:
        params = ", ".join(f"{b.name}{list(b.shape)} in [{b.low:g}, {b.high:g}]" for b in self.parameters)
        return (
            f"{self.name}: d={self.dim}, t in [0, {self.horizon:g}], x in [{self.x_box[0]:g}, {self.x_box[1]:g}]^{self.dim}"
            + (f", {params}" if params else "")
        )
