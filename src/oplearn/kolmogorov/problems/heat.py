r"""Heat equations :math:`\partial_t u = \tfrac12 \operatorname{tr}(\sigma\sigma^\top \nabla^2 u)`: the SDE
is :math:`X_t = x + \sigma W_t`, Gaussian, so every problem here has a closed form and exact draws.

- :class:`HeatParaboloid`: :math:`\varphi = |x|^2`, :math:`\sigma \in [0, 1]^{d \times d}` a parameter,
  :math:`u = |x|^2 + t \operatorname{tr}(\sigma\sigma^\top)`; ``x`` in :math:`[0.5, 1.5]^d`, ``d = 10``.
- :class:`HeatGaussian`: :math:`\varphi = e^{-|x|^2}`, scalar :math:`\sigma \in [0, 0.1]`,
  :math:`u = (1 + 2t\sigma^2)^{-d/2} \exp(-|x|^2 / (1 + 2t\sigma^2))`; ``x`` in :math:`[-0.1, 0.1]^d`, ``d = 150``.
- :class:`Heat` and :class:`Gaussian`: the same initial conditions without parameters,
  :math:`\sigma = \sqrt{2 \cdot 0.125}\, I` (diffusivity 0.125), ``x`` in :math:`[-0.5, 0.5]^{50}`, ``T = 1``.

References
----------
Berner, Dablander, Grohs, "Numerically Solving Parametric Families of High-Dimensional
Kolmogorov Partial Differential Equations via Deep Learning", NeurIPS 2020; boxes as in its code,
github.com/juliusberner/deep_kolmogorov, ``deep_kolmogorov/pdes.py`` (``heat_para_10d``,
``heat_gaussian_150d``). Richter, Berner, "Robust SDE-Based Variational Formulations for Solving
Linear PDEs via Deep Learning", ICML 2022; github.com/juliusberner/robust_kolmogorov,
``configs/problems/heat_50d.yaml`` and ``gauss_50d.yaml`` (there posed backwards in time with
terminal condition :math:`\varphi`; here in the time to go).
"""

from __future__ import annotations

import math

import torch

from oplearn.kolmogorov.problems.base import KolmogorovPDE, ParameterBox
from oplearn.sde import MatrixNoise, ScalarNoise


class _Heat(KolmogorovPDE):
    """Zero drift; exact draws :math:`x + \\sigma\\sqrt t\\,\\xi`."""

    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def sample_end(
        self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + self.noise.apply(self.diffusion(x, p), xi * t.sqrt()[:, None])


class HeatParaboloid(_Heat):
    r"""Paraboloid initial condition, parametric in the diffusion matrix (module docstring)."""

    name = "heat_paraboloid"

    def __init__(self, dim: int = 10) -> None:
        super().__init__(dim, (0.5, 1.5), (ParameterBox("sigma", (dim, dim), 0.0, 1.0),))
        self.noise = MatrixNoise()

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.block(p, "sigma").to(x.dtype)

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x.square().sum(-1)

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x.square().sum(-1) + t * self.block(p, "sigma").square().sum((-1, -2))


class HeatGaussian(_Heat):
    r"""Gaussian initial condition, parametric in a scalar diffusion (module docstring)."""

    name = "heat_gaussian"

    def __init__(self, dim: int = 150) -> None:
        super().__init__(dim, (-0.1, 0.1), (ParameterBox("sigma", (1,), 0.0, 0.1),))
        self.noise = ScalarNoise()

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return p[:, 0].to(x.dtype)

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x.square().sum(-1))

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        denominator = 1 + 2 * t * p[:, 0].square()
        return torch.exp(-x.square().sum(-1) / denominator) / denominator ** (self.dim / 2)


class _IsotropicHeat(_Heat):
    r"""No parameters, :math:`\sigma = \sqrt{2 \cdot 0.125}\, I`, ``x`` in :math:`[-0.5, 0.5]^d` (the robust-loss setting)."""

    diffusivity = 0.125

    def __init__(self, dim: int = 50) -> None:
        super().__init__(dim, (-0.5, 0.5))
        self.noise = ScalarNoise()

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.tensor(math.sqrt(2 * self.diffusivity), dtype=x.dtype, device=x.device)


class Heat(_IsotropicHeat):
    r""":math:`\varphi = |x|^2`: :math:`u = |x|^2 + 0.25\,d\,t` (module docstring)."""

    name = "heat"

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x.square().sum(-1)

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x.square().sum(-1) + 2 * self.diffusivity * self.dim * t


class Gaussian(_IsotropicHeat):
    r""":math:`\varphi = e^{-|x|^2}`: :math:`u = (1 + t/2)^{-d/2} \exp(-|x|^2 / (1 + t/2))` (module docstring)."""

    name = "gaussian"

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x.square().sum(-1))

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        denominator = 1 + 4 * self.diffusivity * t
        return torch.exp(-x.square().sum(-1) / denominator) / denominator ** (self.dim / 2)
