"""PDE families, one per module, all implementing :class:`oplearn.pdes.base.PDE`."""

from oplearn.pdes.advection import Advection
from oplearn.pdes.base import PDE
from oplearn.pdes.burgers import Burgers, BurgersPDEBench
from oplearn.pdes.darcy import Darcy
from oplearn.pdes.darcy_fem import DarcyFEM
from oplearn.pdes.diffusion_reaction import DiffusionReaction
from oplearn.pdes.kolmogorov_flow import KolmogorovFlow
from oplearn.pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from oplearn.pdes.mesh_base import MeshPDE
from oplearn.pdes.navier_stokes import NavierStokes
from oplearn.pdes.poisson import Helmholtz, Poisson
from oplearn.pdes.poisson_fem import NonlinearPoissonFEM, PoissonFEM
from oplearn.pdes.shallow_water import ShallowWater

#: The PDE families known to ``oplearn generate``, by name.
PDES: dict[str, type[PDE] | type[MeshPDE]] = {
    Darcy.name: Darcy,
    Poisson.name: Poisson,
    Helmholtz.name: Helmholtz,
    DiffusionReaction.name: DiffusionReaction,
    Burgers.name: Burgers,
    BurgersPDEBench.name: BurgersPDEBench,
    NavierStokes.name: NavierStokes,
    Advection.name: Advection,
    # chaotic, long trajectories after a burn-in
    KuramotoSivashinsky.name: KuramotoSivashinsky,
    KolmogorovFlow.name: KolmogorovFlow,
    # on random irregular domains, solved by finite elements (extra fem), stored as meshes
    PoissonFEM.name: PoissonFEM,
    NonlinearPoissonFEM.name: NonlinearPoissonFEM,
    DarcyFEM.name: DarcyFEM,
    # on the sphere (extra sphere)
    ShallowWater.name: ShallowWater,
}

__all__ = [
    "PDE",
    "PDES",
    "Advection",
    "Burgers",
    "BurgersPDEBench",
    "Darcy",
    "DarcyFEM",
    "DiffusionReaction",
    "Helmholtz",
    "KolmogorovFlow",
    "KuramotoSivashinsky",
    "MeshPDE",
    "NavierStokes",
    "NonlinearPoissonFEM",
    "Poisson",
    "PoissonFEM",
    "ShallowWater",
]
