"""PDE families, one per module, all implementing :class:`oplearn.pdes.base.PDE`."""

from oplearn.pdes.base import PDE
from oplearn.pdes.darcy import Darcy
from oplearn.pdes.diffusion_reaction import DiffusionReaction
from oplearn.pdes.poisson import Helmholtz, Poisson

#: The PDE families known to ``oplearn generate``, by name.
PDES: dict[str, type[PDE]] = {
    Darcy.name: Darcy,
    Poisson.name: Poisson,
    Helmholtz.name: Helmholtz,
    DiffusionReaction.name: DiffusionReaction,
}

__all__ = ["PDE", "Darcy", "Poisson", "Helmholtz", "DiffusionReaction", "PDES"]
