"""Observations keep the order of their indices: the values ``y`` given with them stay aligned."""

import numpy as np
import torch

from oplearn.inverse.observations import Observation


def test_unsorted_indices_stay_aligned_with_their_values():
    x = torch.arange(2 * 4 * 4, dtype=torch.float64).reshape(1, 2, 4, 4)
    index = torch.tensor([17, 3, 30, 8])
    obs = Observation(index, (2, 4, 4))
    y = x.flatten(1)[:, index]  # the values a user saves beside these indices (obs.npz)
    assert torch.equal(obs.apply(x), y)
    assert obs.misfit(x, y).item() == 0.0
    back = obs.adjoint(y)
    assert torch.equal(back.flatten(1)[:, index], y) and int(obs.mask().sum()) == 4
    assert Observation.from_dict(obs.to_dict()).index.tolist() == index.tolist()


def test_observations_file_with_unsorted_indices(tmp_path):
    """The layout of ``oplearn inverse --observations obs.npz``: the same arrays read back give a zero misfit."""
    truth = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    index = np.array([40, 2, 27, 11, 33])
    np.savez(tmp_path / "obs.npz", index=index, y=truth.flatten(1)[0, index].numpy())
    given = np.load(tmp_path / "obs.npz")
    obs = Observation(torch.from_numpy(given["index"]), (2, 5, 5))
    assert obs.misfit(truth, torch.from_numpy(given["y"])[None]).item() == 0.0
