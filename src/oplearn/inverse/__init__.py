"""Inverse problems with diffusion priors: observe a few values of some fields, sample the rest.

:mod:`~oplearn.inverse.observations` (what is observed), :mod:`~oplearn.inverse.guidance`
(DPS / FunDPS guidance through the denoiser, PDE-residual term, DDIS decoupled fields),
:mod:`~oplearn.inverse.daps` (annealed Langevin), :mod:`~oplearn.inverse.posterior`
(samples, statistics, calibration), :mod:`~oplearn.inverse.baselines` (interpolation,
regression) and :mod:`~oplearn.inverse.linear_gaussian` (a problem with an exact posterior).
"""
