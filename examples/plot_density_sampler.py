"""
Learning a diffusion sampler for an unnormalised density
=========================================================

The target is a two-dimensional Gaussian mixture known only up to its normalising constant.
A DIS sampler (a diffusion whose control reverses a noising process) is trained with the
log-variance loss on off-policy paths, then draws samples with importance weights that
estimate :math:`\\log Z` (exactly 0 for this target). This is what ``train.task=sampler`` runs
through the training loop, here at a small size.
"""

import matplotlib.pyplot as plt
import torch

from oplearn.sampling.losses import make_loss
from oplearn.sampling.methods import make_method
from oplearn.sampling.targets import make_target
from oplearn.sampling.training import train_sampler
from oplearn.seeding import generator

torch.set_num_threads(1)
torch.manual_seed(0)
target = make_target("gmm40", dim=2)
sampler = make_method("dis", target, steps=32, scale=40.0)
train_sampler(sampler, make_loss("log_variance", exploration=0.5), iterations=200, batch_size=128)
estimate = sampler.estimate(2000, generator(1))
print(f"log Z estimate: {float(estimate.log_Z):.3f} (exact 0)")

exact = target.sample(2000, generator(2))
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
axes[0].scatter(*exact.T, s=2)
axes[0].set_title("target samples")
axes[1].scatter(*estimate.samples.detach().T, s=2, color="C1")
axes[1].set_title("learned sampler (200 iterations)")
fig.tight_layout()
plt.show()
