r"""A basket put with affine parametric drift and volatility (no closed form).

.. math::

    dX = \mu(X)\,dt + \Sigma(X)\,dW, \quad
    \mu_k(x) = \sum_{j} M_{kj} x_j + M_{kd}, \quad
    \Sigma_{kj}(x) = \sum_l S_{klj} x_l + S_{kjd}, \qquad
    \varphi(x) = \Big(K - \frac1d \sum_k x_k\Big)^+,

parameters :math:`S \in [0.1, 0.6]^{d \times d \times (d+1)}`, :math:`M \in [0.1, 0.6]^{d \times (d+1)}`,
:math:`K \in [10, 12]`, ``x`` in :math:`[9, 10]^d`, ``t`` in :math:`[0, 1]`, ``d = 3``. References are
Monte-Carlo means over Euler-Maruyama paths of 25 steps (the discretised model the published
errors were measured against), 2^20 paths per point in the reference work.

References
----------
Berner, Dablander, Grohs, NeurIPS 2020, github.com/juliusberner/deep_kolmogorov,
``deep_kolmogorov/pdes.py`` (``basket_3d`` boxes, 25 steps).
"""

from __future__ import annotations

import torch

from oplearn.kolmogorov.problems.base import KolmogorovPDE, ParameterBox
from oplearn.sde import MatrixNoise


class Basket(KolmogorovPDE):
    """Basket put of ``dim`` assets (module docstring)."""

    name = "basket"
    reference_steps = 25

    def __init__(self, dim: int = 3) -> None:
        d = dim
        super().__init__(
            d,
            (9.0, 10.0),
            (
                ParameterBox("sigma", (d, d, d + 1), 0.1, 0.6),
                ParameterBox("mu", (d, d + 1), 0.1, 0.6),
                ParameterBox("K", (1,), 10.0, 12.0),
            ),
        )
        self.noise = MatrixNoise()

    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        m = self.block(p, "mu").to(x.dtype)
        return torch.einsum("bkj,bj->bk", m[..., :-1], x) + m[..., -1]

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        s = self.block(p, "sigma").to(x.dtype)
        return torch.einsum("bklj,bl->bkj", s[..., :-1], x) + s[..., -1]

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.block(p, "K")[:, 0].to(x.dtype) - x.mean(-1))
