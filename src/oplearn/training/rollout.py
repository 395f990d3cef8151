r"""Autoregressive one-step learning on trajectories: windows of frames and rollouts.

A one-step operator maps the last :math:`h` frames to the next one,

.. math:: u_{t+1} \approx G(u_{t-h+1}, \dots, u_t),

with the :math:`h` frames stacked as :math:`h C` input channels. A rollout applies
:math:`G` repeatedly, feeding its own predictions back in. The pushforward trick
(Brandstetter et al. 2022, "Message passing neural PDE solvers") unrolls :math:`p` steps
without gradient from a true window and trains the :math:`(p+1)`-th step, so the model
learns from inputs carrying its own errors; the target is then frame :math:`t + 1 + p`.

Shapes: trajectories ``(n, T + 1, C, *spatial)`` (frame 0 is the initial condition).
"""

from __future__ import annotations

import torch
from torch import nn


def full_trajectory(inputs: torch.Tensor, outputs: torch.Tensor, time: torch.Tensor | None = None) -> torch.Tensor:
    """The trajectory ``u0, u1, ..., uT`` of a dataset's inputs and trajectory outputs.

    Outputs that already start with the inputs (PDEBench-style recipes store frame 0) are
    returned as they are; otherwise the inputs are prepended. Frame 0 counts as stored when
    the output ``time`` starts at 0, or (without times) when the first output frame equals
    the inputs up to float rounding (solvers may return u0 with ~1e-16 round-off).

    Shapes: ``inputs: (n, C, *spatial)``, ``outputs: (n, T, C, *spatial)`` ->
    ``(n, T + 1, C, *spatial)`` (or ``(n, T, C, *spatial)`` when frame 0 is stored).
    """
    if outputs.ndim != inputs.ndim + 1:
        raise ValueError(
            f"one-step training needs trajectory outputs (n, time, channels, *spatial); got inputs "
            f"{tuple(inputs.shape)} and outputs {tuple(outputs.shape)}"
        )
    if time is not None:
        stored = float(time[0]) == 0.0
    else:
        first = outputs[:, 0]
        stored = first.shape == inputs.shape and (
            torch.equal(inputs, first) or torch.allclose(inputs, first, rtol=0, atol=1e-6 * float(inputs.abs().max()))
        )
    if stored:
        return outputs
    return torch.cat([inputs[:, None], outputs], dim=1)


def windows(n_samples: int, n_frames: int, history: int = 1, pushforward: int = 0) -> torch.Tensor:
    """Every training pair ``(sample, t)``: input frames ``t-history+1 .. t``, target frame
    ``t + 1 + pushforward``.

    Shapes: ``-> (pairs, 2)`` int64, sample-major, ``t`` from ``history - 1`` to
    ``n_frames - 2 - pushforward``.
    """
    last = n_frames - 2 - pushforward
    if last < history - 1:
        raise ValueError(
            f"trajectories of {n_frames} frames are too short for history={history} and pushforward={pushforward}"
        )
    t = torch.arange(history - 1, last + 1)
    samples = torch.arange(n_samples)
    return torch.stack(torch.meshgrid(samples, t, indexing="ij"), dim=-1).reshape(-1, 2)


def window_frames(trajectory: torch.Tensor, pairs: torch.Tensor, history: int) -> torch.Tensor:
    """The input frames ``t-history+1 .. t`` of each pair ``(sample, t)``.

    Shapes: ``trajectory: (n, T + 1, C, *spatial)``, ``pairs: (b, 2) -> (b, history, C, *spatial)``.
    """
    steps = pairs[:, 1:] + torch.arange(1 - history, 1)
    return trajectory[pairs[:, :1], steps]


def window_targets(trajectory: torch.Tensor, pairs: torch.Tensor, pushforward: int = 0) -> torch.Tensor:
    """The target frame ``t + 1 + pushforward`` of each pair ``(sample, t)``.

    Shapes: ``trajectory: (n, T + 1, C, *spatial)``, ``pairs: (b, 2) -> (b, C, *spatial)``.
    """
    return trajectory[pairs[:, 0], pairs[:, 1] + 1 + pushforward]


def step(model: nn.Module, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One autoregressive step: the next frame and the window shifted to end with it.

    Shapes: ``frames: (b, h, C, *spatial) -> (b, C, *spatial), (b, h, C, *spatial)``.
    """
    nxt = model(frames.flatten(1, 2)).to(frames.dtype)
    return nxt, torch.cat([frames[:, 1:], nxt[:, None]], dim=1)


def rollout(model: nn.Module, initial_frames: torch.Tensor, steps: int) -> torch.Tensor:
    """Apply a one-step ``model`` ``steps`` times, feeding its predictions back in.

    Prediction ``k`` (from 0) is the model's frame ``h + k`` when ``initial_frames`` are
    frames ``0 .. h-1``. Gradients are kept unless called under ``torch.no_grad()``.

    Shapes: ``initial_frames: (n, h, C, *spatial) -> (n, steps, C, *spatial)``.
    """
    frames, out = initial_frames, []
    for _ in range(steps):
        nxt, frames = step(model, frames)
        out.append(nxt)
    return torch.stack(out, dim=1)
