r"""PDEBench's random initial condition for 1D periodic problems (advection, Burgers).

.. math::

    u_0(x) = s \, W(x) \, A\!\left(\sum_{n=1}^{K} a_n \sin\!\left(2 \pi c_n n \frac{x - lo}{L} + \phi_n\right)\right),

with :math:`K` = ``k_max`` and, independently per sample:

* :math:`c_n` the number of times :math:`n` comes up in ``picks`` uniform draws from
  :math:`\{1, \dots, K\}`. Usually two distinct wavenumbers are active; an :math:`n` drawn
  twice oscillates at :math:`2n`, and the terms never drawn (:math:`c_n = 0`) are the
  constants :math:`a_n \sin \phi_n`, a random offset. This is the law of PDEBench's
  sampler, which sums over all :math:`K` wavenumbers with a multiplicity weight;
* amplitudes :math:`a_n \sim U(0, 1)` and phases :math:`\phi_n \sim U(0, 2\pi)`;
* :math:`A = |\cdot|` with probability ``p_abs`` (0.1), else the identity;
* a sign :math:`s = \pm 1` with probability 1/2 each;
* with probability ``p_window`` (0.1) the window
  :math:`W = \tfrac12 (\tanh((x - x_L)/\delta) - \tanh((x - x_R)/\delta))`,
  :math:`x_L \sim U(0.1, 0.45)`, :math:`x_R \sim U(0.55, 0.9)` (fractions of the box),
  :math:`\delta = 0.01`; else :math:`W = 1`.

Differences from PDEBench's own files: they evaluate at cell centres with wavenumbers
:math:`2\pi n / (1 - \Delta x)` (not exactly periodic) and reuse one random key for
several choices (correlating, e.g., :math:`x_L` with :math:`x_R`); here the draws are
independent, the wavenumbers exactly periodic and the nodes those of
:class:`~oplearn.grids.Grid`.
"""

from __future__ import annotations

import math

import torch

from oplearn.grids import Grid


class RandomSines:
    """Sampler of the PDEBench sine-wave initial condition (see the module docstring).

    Each sample is a vector of ``picks + 2 k_max + 5`` uniform numbers (:meth:`draw`),
    drawn one sample after another, so the first ``m`` of ``n`` samples equal ``m``
    samples from the same generator state; :meth:`evaluate` turns them into a function
    evaluated at any points, so a sample is the same function at every resolution.

    Parameters
    ----------
    k_max : int
        Largest wavenumber index ``K`` (PDEBench: 4).
    picks : int
        Wavenumber draws per sample (PDEBench: 2).
    p_abs, p_window : float
        Probabilities of taking the absolute value and of applying the window.
    width : float
        Window transition width :math:`\\delta` as a fraction of the box.

    Shapes
    ------
    ``sample(n, grid)``: ``(n, *grid.shape)`` for a 1D grid.
    """

    def __init__(
        self, k_max: int = 4, picks: int = 2, p_abs: float = 0.1, p_window: float = 0.1, width: float = 0.01
    ) -> None:
        if int(k_max) != k_max or k_max < 1:
            raise ValueError(f"k_max must be a positive integer, got {k_max}")
        if int(picks) != picks or picks < 1:
            raise ValueError(f"picks must be a positive integer, got {picks}")
        for name, p in (("p_abs", p_abs), ("p_window", p_window)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be a probability, got {p}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        self.k_max, self.picks = int(k_max), int(picks)
        self.p_abs, self.p_window, self.width = float(p_abs), float(p_window), float(width)

    @property
    def draws_per_sample(self) -> int:
        return self.picks + 2 * self.k_max + 5

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples' uniform numbers, float64 on the generator's device: ``(n, draws_per_sample)``."""
        if int(n) != n or n < 0:
            raise ValueError(f"number of samples must be a non-negative integer, got {n}")
        device = generator.device if generator is not None else torch.device("cpu")
        rows = [
            torch.rand(self.draws_per_sample, generator=generator, dtype=torch.float64, device=device)
            for _ in range(int(n))
        ]
        return (
            torch.stack(rows) if rows else torch.zeros((0, self.draws_per_sample), dtype=torch.float64, device=device)
        )

    def evaluate(self, draws: torch.Tensor, x: torch.Tensor, domain: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
        """The functions defined by ``draws`` at the points ``x`` of the periodic interval ``domain``.

        Shapes: ``draws (n, draws_per_sample)``, ``x (m,)`` -> ``(n, m)``.
        """
        lo, hi = domain
        s = (x.to(torch.float64) - lo) / (hi - lo)  # position as a fraction of the period
        draws = draws.to(s.device)
        k, p = self.k_max, self.picks
        picked = torch.clamp((draws[:, :p] * k).floor().long(), max=k - 1)  # indices of n - 1
        counts = torch.nn.functional.one_hot(picked, k).sum(1).to(torch.float64)  # c_n, (n, K)
        amplitude = draws[:, p : p + k]
        phase = 2 * math.pi * draws[:, p + k : p + 2 * k]
        u_abs, u_sign, u_window, u_left, u_right = draws[:, p + 2 * k :].unbind(1)
        n = torch.arange(1, k + 1, dtype=torch.float64, device=s.device)
        argument = 2 * math.pi * (counts * n)[:, :, None] * s + phase[:, :, None]  # (n, K, m)
        u = (amplitude[:, :, None] * torch.sin(argument)).sum(1)
        u = torch.where((u_abs < self.p_abs)[:, None], u.abs(), u)
        u = torch.where((u_sign < 0.5)[:, None], -u, u)
        x_left = (0.1 + 0.35 * u_left)[:, None]
        x_right = (0.55 + 0.35 * u_right)[:, None]
        window = 0.5 * (torch.tanh((s - x_left) / self.width) - torch.tanh((s - x_right) / self.width))
        return torch.where((u_window < self.p_window)[:, None], u * window, u)

    def sample(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` initial conditions at the nodes of the periodic 1D ``grid``: ``(n, *grid.shape)``, float64."""
        if grid.ndim != 1 or not grid.periodic:
            raise ValueError(
                f"RandomSines needs a periodic 1D grid, got shape {grid.shape} with periodic={grid.periodic}"
            )
        (x,) = grid.axes(torch.float64)
        return self.evaluate(self.draw(n, generator), x, grid.domain[0])

    def params(self) -> dict:
        return {
            "k_max": self.k_max,
            "picks": self.picks,
            "p_abs": self.p_abs,
            "p_window": self.p_window,
            "width": self.width,
        }
