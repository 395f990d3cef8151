r"""EDM preconditioning and training loss (Karras et al. 2022).

The denoiser is a network :math:`F_\theta` wrapped so that its input and target have unit
variance at every noise level:

.. math::

    D(x; \sigma) = c_{skip}(\sigma)\, x + c_{out}(\sigma)\, F_\theta\big(c_{in}(\sigma)\, x,\ c_{noise}(\sigma)\big),

    c_{skip} = \frac{\sigma_d^2}{\sigma^2 + \sigma_d^2}, \quad
    c_{out} = \frac{\sigma \sigma_d}{\sqrt{\sigma^2 + \sigma_d^2}}, \quad
    c_{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_d^2}}, \quad
    c_{noise} = \tfrac14 \log\sigma,

with :math:`\sigma_d` the data's standard deviation. Training minimises

.. math::

    E_{\sigma, x_0, \varepsilon}\, \lambda(\sigma)\, \|D(x_0 + \sigma\varepsilon; \sigma) - x_0\|^2,
    \qquad \lambda(\sigma) = \frac{\sigma^2 + \sigma_d^2}{(\sigma \sigma_d)^2} = c_{out}^{-2},

(so :math:`F_\theta` regresses a unit-variance target with unit weight), the mean over
entries, with :math:`\log\sigma \sim \mathcal N(P_{mean}, P_{std}^2)`.
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.layers.normalization import ChannelNormalizer


def edm_scalings(
    sigma: torch.Tensor, sigma_data: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out, c_in, c_noise)`` of the module docstring, each shaped like ``sigma``."""
    total = sigma**2 + sigma_data**2
    return sigma_data**2 / total, sigma * sigma_data / total.sqrt(), total.rsqrt(), sigma.log() / 4


def edm_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    r"""The loss weight :math:`\lambda(\sigma) = (\sigma^2 + \sigma_d^2) / (\sigma\sigma_d)^2`."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def training_sigmas(
    n: int,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""``n`` noise levels with :math:`\log\sigma \sim \mathcal N(P_{mean}, P_{std}^2)`, float32 ``(n,)``."""
    draw_device = generator.device if generator is not None else torch.device("cpu")
    z = torch.randn(n, generator=generator, device=draw_device)
    return (p_mean + p_std * z).exp().to(device)


class EDMDenoiser(nn.Module):
    r"""The preconditioned denoiser :math:`D(x; \sigma)` around a network ``net(x, c_noise)``.

    It acts on normalised fields: ``norm`` (a :class:`ChannelNormalizer`, identity until
    fitted) maps physical fields to the space the diffusion runs in (:meth:`encode`,
    :meth:`decode`); there the data have per-channel mean 0 and standard deviation 1, so
    ``sigma_data = 1`` unless set otherwise.

    Parameters
    ----------
    net : nn.Module
        ``net(x: (batch, C, *spatial), c_noise: (batch,)) -> (batch, C, *spatial)``.
    sigma_data : float
        :math:`\sigma_d`.
    channels : int
        ``C``.

    Shapes
    ------
    ``forward(x: (batch, C, *spatial), sigma: (batch,)) -> (batch, C, *spatial)``.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 1.0, channels: int = 1) -> None:
        super().__init__()
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.net = net
        self.sigma_data = float(sigma_data)
        self.channels = int(channels)
        self.norm = ChannelNormalizer(channels)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if x.ndim < 3 or x.shape[1] != self.channels:
            raise ValueError(f"denoiser expects (batch, {self.channels}, *spatial), got {tuple(x.shape)}")
        sigma = sigma.to(device=x.device, dtype=torch.float32).reshape(-1)
        c_skip, c_out, c_in, c_noise = (c.view(-1, *[1] * (x.ndim - 1)) for c in edm_scalings(sigma, self.sigma_data))
        out = self.net((c_in * x).to(x.dtype), c_noise.reshape(-1))
        return (c_skip * x + c_out * out.float()).to(x.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Physical fields -> the normalised fields the diffusion runs on."""
        return self.norm.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised fields -> physical fields."""
        return self.norm.decode(z)


def edm_loss(
    denoiser: nn.Module, x0: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor, sigma_data: float
) -> torch.Tensor:
    r"""Per-sample EDM loss :math:`\lambda(\sigma)\, \mathrm{mean}(D(x_0 + \sigma\varepsilon; \sigma) - x_0)^2`.

    Shapes: ``x0, eps: (batch, C, *spatial)``, ``sigma: (batch,) -> (batch,)``.
    """
    noisy = x0 + sigma.view(-1, *[1] * (x0.ndim - 1)) * eps
    error = (denoiser(noisy, sigma).float() - x0.float()).square().flatten(1).mean(1)
    return edm_weight(sigma.float(), sigma_data) * error
