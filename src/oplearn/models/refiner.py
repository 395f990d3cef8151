r"""PDE-Refiner: a one-step prediction refined by a few denoising steps.

The refined quantity is the normalised increment of the last frame,
:math:`d = N_\Delta(u(t + \Delta t) - u(t))`, where :math:`N_\Delta` removes the per-channel
mean and standard deviation of the training data's frame increments (inputs are normalised
by :math:`N_u`, the moments of the frames). A network :math:`D_\theta(\mathbf x, \tilde d, k)`
of the past frames :math:`\mathbf x`, an estimate :math:`\tilde d` and the refinement step
:math:`k` is used :math:`K + 1` times per step:

.. math::

    \hat d^{(0)} &= D_\theta(\mathbf x, 0, 0), \\
    \tilde d^{(k)} &= \hat d^{(k-1)} + \sigma_k \epsilon, \quad \epsilon \sim N(0, I), \qquad
    \hat d^{(k)} = \tilde d^{(k)} - \sigma_k D_\theta(\mathbf x, \tilde d^{(k)}, k),
    \qquad k = 1, \dots, K, \\
    \hat u(t + \Delta t) &= u(t) + N_\Delta^{-1}(\hat d^{(K)}),

with :math:`\sigma_k = \sigma_{\min}^{k / K}`. Training draws :math:`k` uniformly from
:math:`0 .. K`: step 0 regresses the increment, steps :math:`k \ge 1` predict the noise
added to the true increment (:func:`refiner_loss`). The decreasing noise makes each step
attend to smaller, higher-frequency parts of the error, which a plain one-step MSE model
neglects and which dominate the error growth of long rollouts.

Two choices decide whether step 0 learns as well as a plain one-step model of the same
budget (the shared network also learns the noise levels):

- the increment, normalised to unit variance, is the target, not the frame: a frame
  normalised by its own moments makes step 0's loss (the squared relative error, about
  :math:`10^{-3}`) negligible beside the noise levels' losses (order one), so step 0
  starves;
- :math:`\sigma_{\min}` of about :math:`6 \cdot 10^{-4}` (levels 0.086, 0.0074, 0.00063 for
  :math:`K = 3`): the reference implementation passes :math:`4 \cdot 10^{-7}` as the
  *variance* of the last level. Taken as a standard deviation it asks the network for gains
  of :math:`1 / \sigma_k` up to :math:`2.5 \cdot 10^6`, which it cannot learn and which make
  its rollouts unstable.

Any grid model of the zoo serves as :math:`D_\theta`: the estimate is stacked as extra
input channels. A conditioned model (:mod:`oplearn.layers.conditioning`) gets :math:`k` in
every block, by a Fourier embedding of :math:`k / K` modulating each block (FiLM), as the
reference implementation conditions each residual block; any other model gets :math:`k / K`
as one constant input channel.

References
----------
P. Lippe, B. S. Veeling, P. Perdikaris, R. E. Turner, J. Brandstetter, PDE-Refiner:
achieving accurate long rollouts with neural PDE solvers, NeurIPS 2023.
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.layers.conditioning import FourierEmbedding
from oplearn.layers.normalization import ChannelNormalizer
from oplearn.models.operator import OperatorModel


class PDERefiner(nn.Module):
    """One-step predictor ``(batch, history * channels, *spatial) -> (batch, channels, *spatial)``
    in physical units, by :math:`K` refinement steps of ``denoiser`` (see the module docstring).

    Parameters
    ----------
    denoiser : OperatorModel
        ``(batch, (history + 1) * channels + 1, *spatial) -> (batch, channels, *spatial)`` on
        normalised fields (its own normalisers are left at the identity); with
        ``step_embedding``, ``(batch, (history + 1) * channels, *spatial)`` and a condition
        ``(batch, step_embedding)`` instead.
    channels, history : int
        Channels of a frame and frames of input.
    steps : int
        Refinement steps :math:`K`.
    min_noise_std : float
        :math:`\\sigma_{\\min}`, the noise standard deviation of the last step (in units of
        the increments' standard deviation).
    step_embedding : int
        ``> 0``: channels of the :class:`~oplearn.layers.conditioning.FourierEmbedding` of
        :math:`k / K` passed to the conditioned ``denoiser``; 0: :math:`k / K` is an input channel.

    Shapes
    ------
    ``forward(x)``: ``(batch, history * channels, *spatial) -> (batch, channels, *spatial)``
    (``forward(x, estimate, k)``: ``denoise`` of the normalised ``x``);
    ``denoise(z, estimate, k)``: normalised frames ``(batch, history * channels, *spatial)``,
    ``estimate (batch, channels, *spatial)`` (a normalised increment), ``k (batch,)`` ->
    ``(batch, channels, *spatial)``.
    """

    def __init__(
        self,
        denoiser: OperatorModel,
        channels: int,
        history: int,
        steps: int = 3,
        min_noise_std: float = 4e-7**0.5,
        step_embedding: int = 0,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.channels, self.history, self.steps = channels, history, steps
        self.min_noise_std = min_noise_std
        self.step_embedding = FourierEmbedding(step_embedding) if step_embedding else None
        self.frame_norm = ChannelNormalizer(channels)
        self.step_norm = ChannelNormalizer(channels)
        #: Applied to the refined increment in physical units when set (``train.mode_projection``).
        self.projection: nn.Module | None = None

    # the interface of an operator on the data's grid (what evaluation checks data against)
    @property
    def in_channels(self) -> int:
        return self.history * self.channels

    @property
    def out_channels(self) -> int:
        return self.channels

    @property
    def ndim(self) -> int:
        return self.denoiser.ndim

    @property
    def domain(self) -> tuple:
        return self.denoiser.domain

    @property
    def periodic(self) -> bool:
        return self.denoiser.periodic

    @property
    def train_shape(self) -> tuple:
        return self.denoiser.train_shape

    def noise_std(self, k: torch.Tensor) -> torch.Tensor:
        """:math:`\\sigma_k = \\sigma_{\\min}^{k / K}` (0 for ``k = 0``). Shapes: ``(b,) -> (b,)``."""
        return torch.where(k > 0, self.min_noise_std ** (k.double() / self.steps), 0.0).float()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise stacked frames: ``(batch, h * channels, *spatial)`` -> same shape."""
        b = x.shape[0]
        frames = x.reshape(b * (x.shape[1] // self.channels), self.channels, *x.shape[2:])
        return self.frame_norm.encode(frames).reshape(x.shape)

    def increment(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The normalised increment :math:`d = N_\\Delta(y - u(t))` from the last frame of
        ``x (batch, history * channels, *spatial)`` to ``y (batch, channels, *spatial)``."""
        return self.step_norm.encode(y - x[:, -self.channels :])

    def denoise(self, z: torch.Tensor, estimate: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """One call of :math:`D_\\theta` on normalised frames ``z`` (see the class docstring)."""
        level = k.float() / self.steps
        if self.step_embedding is not None:
            return self.denoiser(torch.cat([z, estimate.to(z.dtype)], dim=1), self.step_embedding(level))
        level = level.reshape(-1, 1, *([1] * (z.ndim - 2))).expand(z.shape[0], 1, *z.shape[2:])
        return self.denoiser(torch.cat([z, estimate.to(z.dtype), level.to(z.dtype)], dim=1))

    def forward(
        self, x: torch.Tensor, estimate: torch.Tensor | None = None, k: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The refined next frame of physical frames ``x``; with ``estimate`` and ``k``, one
        denoiser call :meth:`denoise` on the normalised ``x`` instead (what training differentiates)."""
        z = self.encode(x)
        if estimate is not None:
            return self.denoise(z, estimate, k)
        b = x.shape[0]
        shape = (b, self.channels, *x.shape[2:])
        d = self.denoise(z, z.new_zeros(shape), torch.zeros(b, dtype=torch.long, device=x.device))
        for k in range(1, self.steps + 1):
            step = torch.full((b,), k, dtype=torch.long, device=x.device)
            sigma = float(self.min_noise_std ** (k / self.steps))
            noisy = d + sigma * torch.randn_like(d)
            d = noisy - sigma * self.denoise(z, noisy, step)
        increment = self.step_norm.decode(d).to(x.dtype)
        if self.projection is not None:
            increment = self.projection(increment)
        return x[:, -self.channels :] + increment


def refiner_loss(
    model: PDERefiner,
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator | None = None,
    first_step_fraction: float | None = None,
) -> torch.Tensor:
    r"""PDE-Refiner's training loss on a batch of windows, a mean square error in normalised units.

    Each sample draws :math:`k \sim U\{0, \dots, K\}` (with ``first_step_fraction`` :math:`p`:
    :math:`k = 0` with probability :math:`p`, else :math:`k \sim U\{1, \dots, K\}`, to give the
    one-step prediction more of the samples than its :math:`1 / (K + 1)`); for :math:`k = 0` the target is the
    normalised increment :math:`d` (:meth:`PDERefiner.increment`) from a zero estimate, for
    :math:`k \ge 1` it is the noise :math:`\epsilon` in :math:`\tilde d = d + \sigma_k \epsilon`.
    ``net`` is ``model`` or its distributed wrapper (called as ``net(x, estimate, k)``).

    Shapes: ``x (batch, h * channels, *spatial)``, ``y (batch, channels, *spatial)`` -> scalar.
    """
    b = x.shape[0]
    device = x.device
    if first_step_fraction is None:
        k = torch.randint(0, model.steps + 1, (b,), generator=generator, device="cpu")
    else:
        first = torch.rand(b, generator=generator) < first_step_fraction
        k = torch.where(first, 0, torch.randint(1, model.steps + 1, (b,), generator=generator))
    k = k.to(device)
    target = model.increment(x, y)
    eps = torch.randn(target.shape, generator=generator, device="cpu").to(device)
    sigma = model.noise_std(k).reshape(-1, *([1] * (y.ndim - 1)))
    refining = (k > 0).reshape(-1, *([1] * (y.ndim - 1)))
    estimate = torch.where(refining, target + sigma * eps, torch.zeros_like(target))
    pred = net(x, estimate, k)
    return (pred.float() - torch.where(refining, eps, target)).square().mean()
