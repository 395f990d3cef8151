"""
Diffusion samplers on a prior with an exact denoiser
=====================================================

A Gaussian mixture over 2-dimensional "fields" has an exact denoiser :math:`D(x; \\sigma)`
(:class:`oplearn.diffusion.gaussian.GaussianMixture`), so the samplers of
:mod:`oplearn.diffusion.samplers` can be compared without training anything: each integrates
the probability-flow ODE along the same Karras schedule from the same noise. With few steps
the first-order Euler (DDIM) sampler leaves the samples blurred between the modes, the
higher-order ones put them on the modes.
"""

import matplotlib.pyplot as plt
import torch

from oplearn.diffusion.gaussian import GaussianMixture
from oplearn.diffusion.samplers import sample
from oplearn.diffusion.schedules import karras_sigmas

torch.set_num_threads(1)
angles = torch.arange(6) * (2 * torch.pi / 6)
means = (3 * torch.stack([angles.cos(), angles.sin()], 1)).reshape(6, 1, 2)  # (K, C, n) with C=1, n=2
prior = GaussianMixture(means.double(), torch.full((6,), 0.2, dtype=torch.float64))

steps = 6
sigmas = karras_sigmas(steps, sigma_max=20.0).double()
noise = sigmas[0] * torch.randn(2000, 1, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
methods = ["euler", "heun", "dpmpp2m", "dpmpp3m", "unipc"]
fig, axes = plt.subplots(1, len(methods) + 1, figsize=(3 * (len(methods) + 1), 3), sharex=True, sharey=True)
exact = prior.sample(2000).reshape(-1, 2)
axes[0].scatter(*exact.T, s=2)
axes[0].set_title("exact samples")
for ax, method in zip(axes[1:], methods):
    x = sample(prior.denoise, noise, sigmas, method=method).reshape(-1, 2)
    ax.scatter(*x.T, s=2)
    ax.set_title(f"{method}, {steps} steps")
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
