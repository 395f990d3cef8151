r"""The learned solution :math:`\hat u(t, x; p)`: a flat-feature network on standardised inputs.

``KolmogorovModel(net, mean, std)(t, x, p) = net(([t, x, p] - mean) / std)``, the standardisation
being that of the uniform training distribution (:meth:`KolmogorovPDE.standardisation`), kept as
buffers so that checkpoints carry it. Losses that learn the gradient as well
(:class:`~oplearn.kolmogorov.losses.LearnedGradientBSDE`) add a second network ``grad_net`` on the
same standardised inputs: ``gradient(t, x, p)`` :math:`\approx \nabla_x u(t, x; p)`.

Shapes: ``t (batch,)``, ``x (batch, d)``, ``p (batch, P)`` -> ``(batch,)``; ``gradient`` -> ``(batch, d)``.
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.kolmogorov.problems import KolmogorovPDE

#: Points per batch of :meth:`KolmogorovModel.predict` on the CPU.
CPU_BATCH = 2048


class KolmogorovModel(nn.Module):
    """A network ``(batch, 1 + d + P) -> (batch,)`` called on standardised ``(t, x, p)`` (and optionally a
    gradient network ``(batch, 1 + d + P) -> (batch, d)``)."""

    def __init__(
        self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor, grad_net: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.net = net
        self.grad_net = grad_net
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())

    @classmethod
    def for_problem(cls, net: nn.Module, problem: KolmogorovPDE, grad_net: nn.Module | None = None) -> KolmogorovModel:
        return cls(net, *problem.standardisation(), grad_net=grad_net)

    def _features(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        features = torch.cat([t[:, None], x, p], 1)
        return (features - self.mean.to(features)) / self.std.to(features)

    def forward(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.net(self._features(t, x, p))

    def gradient(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r"""The learned gradient :math:`\nabla_x \hat u` ``(batch, d)`` (needs ``grad_net``)."""
        if self.grad_net is None:
            raise ValueError("this model has no gradient network (grad_net)")
        return self.grad_net(self._features(t, x, p)).view(len(t), -1)

    @torch.inference_mode()
    def predict(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Values ``(n,)`` in evaluation mode, in batches, on the model's device, returned on the CPU.

        The default batch is :data:`CPU_BATCH` points on the CPU, where batches whose activations fit
        in the cache halve the time of wide networks against one large batch (``benchmarks/kolmogorov.py``,
        part ``cost``), and 65536 on an accelerator."""
        self.eval()
        device = self.mean.device
        batch_size = batch_size or (CPU_BATCH if device.type == "cpu" else 65536)
        return torch.cat(
            [
                self(
                    t[i : i + batch_size].to(device), x[i : i + batch_size].to(device), p[i : i + batch_size].to(device)
                ).cpu()
                for i in range(0, len(t), batch_size)
            ]
        )
