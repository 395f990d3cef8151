"""A cheap PDE for testing the data machinery without a real solver: u = 2 a + 1."""

import torch

from oplearn.pdes.base import PDE


class Doubling(PDE):
    name = "doubling"
    input_names = ("a",)
    output_names = ("u",)
    periodic = False
    ndim = 2

    def __init__(self, scale: float = 1.0, refine: int = 1):
        self.scale, self.refine = scale, refine
        self.solves = 0

    def sample_input(self, n, grid, generator=None):
        return self.scale * torch.randn(n, 1, *grid.shape, generator=generator, dtype=torch.float64)

    def solve(self, inputs, grid):
        self.solves += len(inputs)
        return 2 * inputs + 1

    def residual(self, outputs, inputs, grid):
        return outputs - 2 * inputs - 1

    def params(self):
        return {"scale": self.scale, "refine": self.refine}
