"""
Walk-on-spheres: error against the number of walks
====================================================

Walk-on-spheres estimates the solution of Laplace's equation :math:`\\Delta u = 0` in a domain
with :math:`u = g` on its boundary at any point, without a mesh. Here the domain is a square
with a round hole and :math:`g` is the harmonic polynomial :math:`x^3 - 3xy^2`, so the exact
solution is :math:`g` itself. The estimate's error falls like :math:`1/\\sqrt{N}` in the number
of walks :math:`N`, and its reported standard error tracks it.
"""

import matplotlib.pyplot as plt
import torch

from oplearn.wos.domains import Ball, Box
from oplearn.wos.walk import DirichletProblem, walk_on_spheres

torch.set_num_threads(1)
domain = Box((-1.0, -1.0), (1.0, 1.0)) - Ball((0.0, 0.0), 0.3)
exact = lambda p: p[..., 0] ** 3 - 3 * p[..., 0] * p[..., 1] ** 2
problem = DirichletProblem(domain, exact)
points = torch.tensor([[0.5, 0.5], [-0.6, 0.2], [0.1, -0.7], [0.8, -0.1]], dtype=torch.float64)

walks = [100, 300, 1000, 3000, 10000]
errors, stderrs = [], []
for n in walks:
    estimate = walk_on_spheres(problem, points, n, generator=torch.Generator().manual_seed(n))
    errors.append((estimate.mean - exact(points)).abs().mean().item())
    stderrs.append(estimate.stderr.mean().item())

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(walks, errors, "o-", label="mean |error| at 4 points")
ax.loglog(walks, stderrs, "s--", label="reported standard error")
ax.loglog(walks, [stderrs[0] * (walks[0] / n) ** 0.5 for n in walks], "k:", label=r"$\propto N^{-1/2}$")
ax.set_xlabel("walks per point N")
ax.set_ylabel("error")
ax.legend()
fig.tight_layout()
plt.show()
