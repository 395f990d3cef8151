"""PDE-Refiner (train.task=refiner): the refinement loop and its training."""

import math

import torch
from torch import nn

from oplearn.models.refiner import PDERefiner, refiner_loss


class BandDenoiser(nn.Module):
    """A denoiser that knows the large scales (modes below ``band``) of the next frame as ``belief``
    and that the truth has no small scales. Step 0 returns ``belief + small_scale_error`` (a one-step
    prediction with small-scale error); step k >= 1 predicts the noise as the estimate minus the
    large scales of ``belief``, in units of sigma_k."""

    def __init__(
        self, belief: torch.Tensor, small_scale_error: torch.Tensor, band: int, steps: int, min_noise_std: float
    ):
        super().__init__()
        self.belief, self.error, self.band = belief, small_scale_error, band
        self.steps, self.min_noise_std = steps, min_noise_std

    def forward(self, x):
        estimate, k = x[:, 1:2], round(float(x[0, 2, 0]) * self.steps)
        if k == 0:
            return self.belief + self.error
        sigma = self.min_noise_std ** (k / self.steps)
        b_hat = torch.fft.rfft(self.belief, dim=-1)
        b_hat[..., self.band :] = 0
        return (estimate - torch.fft.irfft(b_hat, n=estimate.shape[-1], dim=-1)) / sigma


def test_refinement_removes_the_small_scale_error_of_the_one_step_prediction():
    n, band, steps, sigma_min = 64, 8, 3, 4e-7
    x = torch.linspace(0, 2 * math.pi, n + 1)[:-1]
    truth = (torch.sin(x) + 0.5 * torch.cos(3 * x)).reshape(1, 1, n)
    small = 0.01 * torch.sin(20 * x).reshape(1, 1, n)
    large = 0.01 * torch.sin(2 * x).reshape(1, 1, n)
    torch.manual_seed(0)
    for large_error in (0 * large, large):
        denoiser = BandDenoiser(truth + large_error, small, band, steps, sigma_min)
        model = PDERefiner(denoiser, channels=1, history=1, steps=steps, min_noise_std=sigma_min)
        refined = model(torch.zeros(1, 1, n))  # frame norm is the identity: physical = normalised units
        before = float((large_error + small).norm() / truth.norm())
        after = float((refined - truth).norm() / truth.norm())
        # the small-scale error is gone; what the model gets wrong at large scales stays
        assert after < 1e-5 + 1.01 * float(large_error.norm() / truth.norm()) and after < 0.75 * before, (before, after)


def test_refiner_loss_targets_the_noise_and_the_frame():
    """With a denoiser that returns the exact target of each level, the loss is zero."""
    steps, sigma_min = 3, 1e-2
    y = torch.randn(8, 1, 16)

    class Exact(nn.Module):
        def forward(self, x):
            estimate, k = x[:, 1:2], torch.round(x[:, 2, 0] * steps)
            sigma = (sigma_min ** (k / steps)).reshape(-1, 1, 1)
            return torch.where(k.reshape(-1, 1, 1) > 0, (estimate - y) / sigma, y)

    model = PDERefiner(Exact(), channels=1, history=1, steps=steps, min_noise_std=sigma_min)
    loss = refiner_loss(model, model, torch.zeros(8, 1, 16), y, torch.Generator().manual_seed(0))
    assert float(loss) < 1e-8
    wrong = refiner_loss(model, model, torch.zeros(8, 1, 16), y + 0.1, torch.Generator().manual_seed(0))
    assert float(wrong) > 1e-3
