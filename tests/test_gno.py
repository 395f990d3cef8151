"""Graph neural operators: the neighbour search against brute force (and past 2^24 pairs),
invariance to point order and to the number of query points, packed batches, convergence
under mesh refinement, exact derivatives of the mollified GNO."""

import math

import pytest
import torch
from helpers import one_thread  # noqa: F401

from oplearn.geometry.mesh import mesh_domain
from oplearn.layers.integral import MOLLIFIERS, KernelIntegral
from oplearn.layers.neighbors import radius_neighbors
from oplearn.models import FNO, FNOGNO, GINO, GNO, MollifiedGNO
from oplearn.wos import Ball

pytestmark = pytest.mark.usefixtures("one_thread")


def brute_force(x, y, r, bx=None, by=None):
    near = torch.cdist(y, x) <= r
    if bx is not None:
        near &= by[:, None] == bx[None]
    return [set(row.nonzero().flatten().tolist()) for row in near]


def as_sets(nb):
    return [set(nb.index[a:b].tolist()) for a, b in zip(nb.row_splits[:-1], nb.row_splits[1:])]


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_neighbour_search_matches_brute_force(dim):
    g = torch.Generator().manual_seed(dim)
    x, y = torch.rand(400, dim, generator=g) * 3 - 1, torch.rand(250, dim, generator=g) * 3 - 1
    nb = radius_neighbors(x, y, 0.4, max_candidates=500, query_block=64)  # many chunks and blocks
    assert nb.index.dtype == nb.row_splits.dtype == torch.int64 and nb.row_splits[0] == 0
    assert as_sets(nb) == brute_force(x, y, 0.4)
    bx, by = torch.randint(0, 3, (400,), generator=g), torch.randint(0, 3, (250,), generator=g)
    assert as_sets(radius_neighbors(x, y, 0.4, bx, by)) == brute_force(x, y, 0.4, bx, by)


def test_neighbour_counts_are_exact_past_two_to_the_24_pairs():
    """Every query sees every point: 4097^2 > 2^24 pairs, where float32 offsets round."""
    n = 4097
    x = torch.rand(n, 2, generator=torch.Generator().manual_seed(0))
    nb = radius_neighbors(x, x, 2.0)
    assert int(nb.row_splits[-1]) == n * n > 2**24 and bool((nb.counts == n).all())
    assert torch.equal(nb.index[-n:].sort().values, torch.arange(n))


def small_gino(mollifier=None, dtype=torch.float32):
    torch.manual_seed(0)
    fno = FNO(16 + 1, 16, modes=4, width=12, n_layers=2, projection_channels=16)
    cls = MollifiedGNO if mollifier else GINO
    kwargs = {"mollifier_out": mollifier} if mollifier else {}
    return cls(
        1,
        1,
        fno,
        (12, 12),
        ((0.0, 1.0), (0.0, 1.0)),
        0.12,
        0.15,
        width=16,
        latent_channels=1,
        kernel_width=24,
        **kwargs,
    ).to(dtype)


def cloud(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g)
    return x, torch.sin(4 * x[:, :1]) + x[:, 1:] ** 2


@pytest.mark.parametrize("name", ["gno", "gino", "fnogno"])
def test_point_order_and_query_count_invariance(name):
    x, a = cloud()
    y = torch.rand(60, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    if name == "gno":
        model = GNO(1, 1, width=16, n_layers=2, radius=0.15, kernel_width=24)
        run = lambda x, a, y: model(x, a, y)
    elif name == "gino":
        model = small_gino()
        latent = torch.randn(1, 1, 12, 12)
        run = lambda x, a, y: model(x, a, y, latent=latent)
    else:
        model = FNOGNO(
            1, 1, FNO(3, 16, modes=4, width=12, n_layers=2), ((0.0, 1.0), (0.0, 1.0)), 0.12, width=16, kernel_width=24
        )
        grid_input = torch.randn(1, 1, 16, 16)
        run = lambda x, a, y: model(grid_input, y)
    with torch.no_grad():
        u = run(x, a, y)
        p, q = torch.randperm(len(x)), torch.randperm(len(y))
        assert u.shape == (60, 1)
        assert torch.allclose(run(x[p], a[p], y[q]), u[q], atol=1e-5)  # input order, query order
        assert torch.allclose(run(x, a, y[:7]), u[:7], atol=1e-5)  # the number of queries
        assert torch.allclose(run(x, a, torch.cat([y, y])), torch.cat([u, u]), atol=1e-5)


def test_packed_batches_equal_separate_samples():
    model = small_gino()
    (x1, a1), (x2, a2) = cloud(300, 0), cloud(450, 1)
    y1, y2 = torch.rand(20, 2), torch.rand(35, 2)
    l1, l2 = torch.randn(1, 1, 12, 12), torch.randn(1, 1, 12, 12)
    with torch.no_grad():
        alone = torch.cat([model(x1, a1, y1, latent=l1), model(x2, a2, y2, latent=l2)])
        xb, yb = (
            torch.arange(2).repeat_interleave(torch.tensor([300, 450])),
            torch.arange(2).repeat_interleave(torch.tensor([20, 35])),
        )
        packed = model(
            torch.cat([x1, x2]), torch.cat([a1, a2]), torch.cat([y1, y2]), xb, yb, latent=torch.cat([l1, l2])
        )
    assert torch.allclose(packed, alone, atol=1e-5)


@pytest.mark.parametrize("mollifier, order", [(None, 0.8), ("bump", 1.6)])
def test_kernel_integral_converges_under_mesh_refinement(mollifier, order):
    """The same operator on finer meshes of one disk (node quadrature weights) converges:
    about first order with a hard-edged neighbourhood (elements cut by the ball's edge),
    second order with a smooth weighting."""
    torch.manual_seed(0)
    integral = KernelIntegral(2, 2, 0.2, kernel_width=16, mollifier=mollifier).double()
    disk = Ball((0.5, 0.5), 0.4)
    y = disk.sample(40, torch.Generator().manual_seed(0))
    field = lambda x: torch.stack([torch.sin(3 * x[:, 0]), x[:, 1] ** 2], 1)

    def at(h):
        mesh = mesh_domain(disk, h)
        with torch.no_grad():
            return integral(mesh.nodes, field(mesh.nodes), y, radius_neighbors(mesh.nodes, y, 0.2), mesh.node_weights)

    reference = at(0.005)
    errors = [float((at(h) - reference).norm() / reference.norm()) for h in (0.04, 0.02, 0.01)]
    slopes = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert min(slopes) > order - 0.5 and sum(slopes) / 2 > order, (errors, slopes)


def test_mollified_gno_derivatives_match_finite_differences():
    model = small_gino("bump", torch.float64)
    x, a = cloud()
    x, a = x.double(), a.double()
    latent = torch.randn(1, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.rand(25, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.8 + 0.1
    from oplearn.point_physics import query_derivatives

    fn = lambda q: model(x, a, q, latent=latent)
    _u, grad, laplacian = query_derivatives(fn, y, create_graph=False)
    h = 1e-5
    for k in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[k] = h
        with torch.no_grad():
            fd = (fn(y + e) - fn(y - e))[:, 0] / (2 * h)
        assert torch.allclose(grad[:, k], fd, rtol=1e-5, atol=1e-7 * float(grad.detach().abs().max()))
    # second differences converge to the autograd Laplacian at their own order, h^2
    errors = []
    for h in (4e-4, 2e-4, 1e-4):
        with torch.no_grad():
            second = (
                sum(fn(y + h * e) + fn(y - h * e) - 2 * fn(y) for e in torch.eye(2, dtype=torch.float64))[:, 0] / h**2
            )
        errors.append(float((second - laplacian).abs().max() / laplacian.abs().max()))
    assert errors[-1] < 1e-4 and errors[0] / errors[1] > 3 and errors[1] / errors[2] > 3, errors


@pytest.mark.parametrize("name", MOLLIFIERS)
def test_mollifiers_vanish_smoothly_at_the_edge(name):
    w = MOLLIFIERS[name]
    t = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    values = w(t)
    (slope,) = torch.autograd.grad(values.sum(), t)
    assert values[0] == 1 and values[1] == 0 and slope[1] == 0 and slope.isfinite().all()


def test_chunking_and_checkpointing_change_nothing():
    x, a = cloud(300)
    y = torch.rand(40, 2)
    model = GNO(1, 1, width=8, n_layers=2, radius=0.15, kernel_width=16)
    u = model(x, a, y)
    (g1,) = torch.autograd.grad(u.square().sum(), model.lifting.weight)
    for integral in model.integrals:
        integral.max_pairs, integral.activation_checkpointing = 700, True
    v = model(x, a, y)
    (g2,) = torch.autograd.grad(v.square().sum(), model.lifting.weight)
    assert torch.allclose(u, v, atol=1e-6) and torch.allclose(g1, g2, atol=1e-5)


@pytest.mark.parametrize("name", ["gno", "gino"])
def test_operators_converge_under_mesh_refinement(name):
    """A fixed (randomly initialised) operator fed the same smooth input on finer meshes of one
    disk, with the meshes' quadrature weights, converges at fixed query points."""
    disk = Ball((0.5, 0.5), 0.4)
    y = disk.sample(30, torch.Generator().manual_seed(0)).float()
    torch.manual_seed(0)
    if name == "gno":
        model = GNO(1, 1, width=8, n_layers=2, radius=0.08, kernel_width=8, mollifier="bump")
        run = lambda m, a: model(m.nodes.float(), a, y, quadrature=m.node_weights.float())
    else:
        model = small_gino()
        latent = torch.randn(1, 1, 12, 12)
        run = lambda m, a: model(m.nodes.float(), a, y, quadrature=m.node_weights.float(), latent=latent)

    def at(h):
        mesh = mesh_domain(disk, h)
        with torch.no_grad():
            return run(mesh, torch.sin(4 * mesh.nodes[:, :1]).float() + mesh.nodes[:, 1:].float() ** 2)

    reference = at(0.014)
    errors = [float((at(h) - reference).norm() / reference.norm()) for h in (0.08, 0.04, 0.02)]
    assert errors[0] > errors[1] > errors[2] and errors[0] / errors[2] > 3, errors
