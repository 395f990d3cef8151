"""PDE families, one per module, all implementing :class:`oplearn.pdes.base.PDE`."""

from oplearn.pdes.advection import Advection
from oplearn.pdes.base import PDE
from oplearn.pdes.burgers import Burgers, BurgersPDEBench
from oplearn.pdes.darcy import Darcy
from oplearn.pdes.diffusion_reaction import DiffusionReaction
from oplearn.pdes.navier_stokes import NavierStokes
from oplearn.pdes.poisson import Helmholtz, Poisson

#: The PDE families known to ``oplearn generate``, by name.
PDES: dict[str, type[PDE]] = {
    Darcy.name: Darcy,
    Poisson.name: Poisson,
    Helmholtz.name: Helmholtz,
    DiffusionReaction.name: DiffusionReaction,
    Burgers.name: Burgers,
    BurgersPDEBench.name: BurgersPDEBench,
    NavierStokes.name: NavierStokes,
    Advection.name: Advection,
}

__all__ = ["PDE", "Darcy", "Poisson", "Helmholtz", "DiffusionReaction", "Burgers", "BurgersPDEBench", "NavierStokes", "Advection", "PDES"]
