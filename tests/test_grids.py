import pytest
import torch

from oplearn.grids import Grid, subsample


def test_node_conventions():
    bounded = Grid((5, 3), domain=((0, 2), (1, 2)))
    assert bounded.spacing == (0.5, 0.5)
    x, y = bounded.coordinates(torch.float64)
    assert x[-1, 0] == 2 and y[0, -1] == 2 and y[0, 0] == 1
    periodic = Grid((4,), periodic=True)
    assert periodic.spacing == (0.25,)
    assert torch.equal(periodic.axes(torch.float64)[0], torch.tensor([0, 0.25, 0.5, 0.75], dtype=torch.float64))


@pytest.mark.parametrize("periodic", [False, True])
def test_refine_then_subsample_gives_the_coarse_nodes(periodic):
    coarse = Grid((9, 5), periodic=periodic)
    fine = coarse.refine(4)
    assert torch.equal(subsample(fine.coordinates(torch.float64), 4, 2), coarse.coordinates(torch.float64))


def test_wavenumbers_and_round_trip():
    g = Grid((8,), domain=((0, 2),), periodic=True)
    k = g.wavenumbers()[0]
    assert torch.allclose(k[:4], torch.pi * torch.arange(4, dtype=torch.float64))
    assert Grid.from_dict(g.to_dict()) == g


def test_invalid_grids():
    with pytest.raises(ValueError, match="at least 2 nodes"):
        Grid((1, 4))
    with pytest.raises(ValueError, match="empty interval"):
        Grid((4,), domain=((1, 1),))
