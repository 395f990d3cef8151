"""
Posterior sampling against an exact posterior
==============================================

The joint prior of a Poisson source :math:`f` (a Gaussian random field) and its solution
:math:`u = L f` is Gaussian, so its diffusion denoiser is known exactly
(:class:`oplearn.inverse.linear_gaussian.LinearGaussianPoisson`) and so is the posterior given
noisy observations of :math:`u` at a few nodes. Covariance guidance
(:class:`oplearn.inverse.guidance.GuidedDenoiser`, the default of ``oplearn inverse``) with its
default 10 DPM-Solver++(2M) steps, started on the guided posterior mean, recovers the source from 100 observed values of the solution; its
posterior mean is drawn next to the exact one and the truth.
"""

import matplotlib.pyplot as plt
import torch

from oplearn.diffusion.noise import GRFNoise
from oplearn.diffusion.samplers import sample
from oplearn.diffusion.schedules import karras_sigmas
from oplearn.inverse.command import DEFAULT_STEPS
from oplearn.inverse.guidance import GuidedDenoiser
from oplearn.inverse.linear_gaussian import LinearGaussianPoisson
from oplearn.inverse.observations import PointObservation
from oplearn.inverse.posterior import summarize
from oplearn.pdes.poisson import Poisson

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
lg = LinearGaussianPoisson(Poisson(), 32, noise=GRFNoise())  # 32x32: dense (1024 x 1024) matrices
truth = lg.sample_prior(1, g)[0]  # (2, 32, 32): source f, solution u
obs = PointObservation(lg.shape, 100, channels=1, noise=0.01 * float(lg.scale[1]), generator=g)
y = obs.observe(truth[None], g)[0]
exact_mean, exact_std = lg.posterior(obs, y)

sigmas = karras_sigmas(DEFAULT_STEPS["covariance"])
guided = GuidedDenoiser(lg.denoiser, obs, y, fields=lg.fields, noise=lg.noise, schedule=sigmas, scale="covariance")
start = guided.start(lg.noise.sample((16, *lg.shape), g, dtype=torch.float64) * sigmas[0], sigmas[0])
posterior = summarize(lg.fields(sample(guided, start, sigmas, method="dpmpp2m")))

panels = [
    (truth[0], "true source f"),
    (exact_mean[0, 0], "exact posterior mean of f"),
    (posterior.mean[0], "sampled posterior mean of f (16 samples)"),
    (posterior.std[0], "sampled posterior std of f"),
]
fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
for ax, (field, title) in zip(axes, panels):
    image = ax.imshow(field.detach().numpy().T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
error = lambda m: float((m - truth[0]).norm() / truth[0].norm())
print(
    f"relative L2 error of f: exact posterior mean {error(exact_mean[0, 0]):.3f}, sampled {error(posterior.mean[0]):.3f}"
)
fig.tight_layout()
plt.show()
