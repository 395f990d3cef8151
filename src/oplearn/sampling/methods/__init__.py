"""Sampling methods over the SDE core; :data:`METHODS` maps config names to constructors.

========== =====================================================================
name       method
========== =====================================================================
pis        Path Integral Sampler
dis        time-reversed Diffusion Sampler
dds        Denoising Diffusion Sampler (exponential integrator)
ula        unadjusted Langevin annealing (no control)
mcd        Monte Carlo Diffusion (learned backward)
cmcd       Controlled Monte Carlo Diffusion
scld       Sequential Controlled Langevin Diffusions (CMCD + resampling)
dis_ud     underdamped DIS
ula_ud     underdamped ULA (UHA)
mcd_ud     underdamped MCD (LDVI)
cmcd_ud    underdamped CMCD
smc        SMC with MALA/HMC kernels (baseline, not trained)
ais        annealed importance sampling (SMC without resampling)
========== =====================================================================
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

from oplearn.errors import ConfigError
from oplearn.sampling.methods.base import Estimate, Sampler
from oplearn.sampling.methods.dis import DDS, DIS, UnderdampedDIS
from oplearn.sampling.methods.langevin import CMCD, MCD, ULA
from oplearn.sampling.methods.pis import PIS
from oplearn.sampling.methods.scld import SCLD
from oplearn.sampling.methods.smc import SMC
from oplearn.sampling.targets.base import Target

#: A registered method: its class, or the class with some keywords fixed.
Method = type[Sampler | SCLD | SMC] | partial

METHODS = {
    "pis": PIS,
    "dis": DIS,
    "dds": DDS,
    "ula": ULA,
    "mcd": MCD,
    "cmcd": CMCD,
    "scld": SCLD,
    "dis_ud": UnderdampedDIS,
    "ula_ud": partial(ULA, integrator="OBABO"),
    "mcd_ud": partial(MCD, integrator="OBABO"),
    "cmcd_ud": partial(CMCD, integrator="OBABO"),
    "smc": SMC,
    "ais": partial(SMC, resample_threshold=0.0),
}


def method_defaults(constructor: Method) -> dict[str, Any]:
    """The keyword arguments a method's constructor takes (beyond the target) with their defaults
    (``inspect.Parameter.empty`` when required); a registered variant's fixed keywords give their
    fixed values, and SCLD takes CMCD's arguments as well."""
    cls, fixed = (constructor.func, constructor.keywords) if isinstance(constructor, partial) else (constructor, {})
    signature = inspect.signature(cls.__init__).parameters
    defaults = {n: p.default for n, p in signature.items() if n not in {"self", "target", "solver", "cmcd"}}
    if cls is SCLD:
        defaults = {**method_defaults(CMCD), **defaults}
    return {**defaults, **fixed}


def method_parameters(constructor: Method) -> set[str]:
    """The keyword arguments a method's constructor takes (beyond the target)."""
    return set(method_defaults(constructor))


def make_method(name: str, target: Target, **params: Any) -> Sampler | SCLD | SMC:
    """The method ``name`` on ``target`` with ``params`` (its constructor's keyword arguments)."""
    if name not in METHODS:
        raise ConfigError(f"unknown sampling method '{name}'; choose one of {', '.join(METHODS)}")
    unknown = set(params) - method_parameters(METHODS[name])
    if unknown:
        raise ConfigError(
            f"method '{name}': unknown parameter(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(method_parameters(METHODS[name])))}"
        )
    return METHODS[name](target, **params)


__all__ = [
    "CMCD",
    "DDS",
    "DIS",
    "MCD",
    "METHODS",
    "PIS",
    "SCLD",
    "SMC",
    "ULA",
    "Estimate",
    "Sampler",
    "UnderdampedDIS",
    "make_method",
    "method_parameters",
]
