"""Diffusion models in function space: noise, schedules, samplers, EDM preconditioning and denoisers.

A *denoiser* is any callable ``denoise(x, sigma) -> x0_hat`` with ``x: (batch, C, *spatial)``
and ``sigma: (batch,)``, the EDM :math:`D(x; \\sigma) \\approx E[x_0 \\mid x_0 + \\sigma \\varepsilon = x]`.
Samplers (:mod:`oplearn.diffusion.samplers`) integrate the probability-flow ODE with any
denoiser; guidance wraps a denoiser into another denoiser.
"""
