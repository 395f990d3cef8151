"""Physics-informed training on point clouds: the strong residual by autograd of the
mollified GNO vanishes for the exact solution and trains an operator without solver data."""

import pytest
import torch
from helpers import one_thread  # noqa: F401

from oplearn.geometry.mesh import mesh_domain
from oplearn.grids import Grid
from oplearn.models import FNO, MollifiedGNO
from oplearn.pdes import DarcyFEM, NonlinearPoissonFEM
from oplearn.point_physics import PointPhysicsLoss, query_derivatives

pytestmark = pytest.mark.usefixtures("one_thread")


def test_strong_residual_vanishes_at_a_manufactured_solution():
    pde = NonlinearPoissonFEM()
    exact = lambda y: torch.sin(3 * y[:, :1]) * y[:, 1:] ** 2
    y = torch.rand(50, 2, dtype=torch.float64)
    u, grad, laplacian = query_derivatives(exact, y)
    flux = lambda y: (1 + exact(y) ** 2) * torch.autograd.grad(exact(y).sum(), y, create_graph=True)[0]
    z = y.clone().requires_grad_(True)
    f = -sum(torch.autograd.grad(flux(z)[:, k].sum(), z)[0][:, k] for k in range(2))
    assert pde.strong_residual(u, grad, laplacian, f[:, None]).abs().max() < 1e-10
    with pytest.raises(ValueError, match="no pointwise residual"):
        DarcyFEM().strong_residual(u, grad, laplacian, f[:, None])


def test_physics_loss_alone_trains_the_mollified_gno():
    pde = NonlinearPoissonFEM(family={"holes": 1})
    problem = pde.sample_problem(torch.Generator().manual_seed(0))
    mesh = mesh_domain(problem.domain, 1 / 16)
    truth = pde.solve(problem, mesh)[:, 0].float()
    x, f, weights = mesh.nodes.float(), problem.inputs(mesh.nodes).float(), mesh.node_weights.float()
    sdf = mesh.signed_distance(Grid((12, 12)).coordinates(torch.float64).flatten(1).T).view(1, 1, 12, 12).float()
    scale = f.abs().max()
    torch.manual_seed(0)
    fno = FNO(16 + 1, 16, modes=4, width=16, n_layers=2, projection_channels=32)
    model = MollifiedGNO(
        1, 1, fno, (12, 12), ((0.0, 1.0), (0.0, 1.0)), 0.15, 0.15, width=16, latent_channels=1, kernel_width=32
    )
    fn = lambda y: model(x, f / scale, y, quadrature=weights, latent=sdf) * (scale / 50)
    loss_fn = PointPhysicsLoss(pde, boundary_weight=100)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def error():
        with torch.no_grad():
            return float((fn(x)[:, 0] - truth).norm() / truth.norm())

    start, losses = error(), []
    for _ in range(60):
        loss = loss_fn(fn, x, f, mesh.boundary)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] / 3 and error() < 0.8 * start, (losses[::10], start, error())
