"""The SDE core: time grids, SDE terms, integrators and path likelihoods.

Shared by density sampling (:mod:`oplearn.sampling`) and Kolmogorov PDEs.

Example::

    from oplearn.sde import ItoSDE, UniformGrid, solve
    from oplearn.seeding import generator

    sde = ItoSDE(lambda t, x: -x, 1.0)                      # dX = -X dt + dW
    path = solve(sde, torch.zeros(8, 2), UniformGrid(0, 1).times(100), generator=generator(0), keep_noise=True)
    path.xs, path.increments()                              # (101, 8, 2), (100, 8, 2)
"""

from oplearn.sde.likelihood import backward_log_density, forward_log_density, girsanov_log_ratio, noise_log_density
from oplearn.sde.linear import OrnsteinUhlenbeck
from oplearn.sde.noise import DiagonalNoise, MatrixNoise, Noise, ScalarNoise
from oplearn.sde.solvers import (
    EulerMaruyama,
    ExponentialEuler,
    Path,
    Solver,
    Splitting,
    Transitions,
    solve,
    solve_backward,
)
from oplearn.sde.terms import SDE, ControlledSDE, ItoSDE, UnderdampedSDE
from oplearn.sde.times import CosineGrid, GeometricGrid, TimeGrid, UniformGrid

__all__ = [
    "SDE",
    "ControlledSDE",
    "CosineGrid",
    "DiagonalNoise",
    "EulerMaruyama",
    "ExponentialEuler",
    "GeometricGrid",
    "ItoSDE",
    "MatrixNoise",
    "Noise",
    "OrnsteinUhlenbeck",
    "Path",
    "ScalarNoise",
    "Solver",
    "Splitting",
    "TimeGrid",
    "Transitions",
    "UnderdampedSDE",
    "UniformGrid",
    "backward_log_density",
    "forward_log_density",
    "girsanov_log_ratio",
    "noise_log_density",
    "solve",
    "solve_backward",
]
