"""Sampling unnormalised densities with learned diffusions: targets, samplers over the SDE core
(:mod:`oplearn.sde`), losses and metrics."""
