"""train.mode_projection: predicted frames projected onto the Fourier modes the training data hold."""

import math

import pytest
import torch

from oplearn.layers.projection import ModeProjection
from oplearn.pdes.kuramoto_sivashinsky import KuramotoSivashinsky


def test_a_dealiased_solver_s_fields_fix_the_cut_at_two_thirds_of_nyquist():
    """KS frames of the 2/3-dealiased solver hold wavenumbers 0..21 of 32 on 64 nodes: the
    projection keeps them exactly and removes noise above the cut, at the training resolution
    and on a finer grid (the same physical wavenumbers)."""
    pde = KuramotoSivashinsky(length=32.0, t_final=4.0, n_times=5, burn_in=20.0)
    _, u = pde.generate(4, 64, torch.Generator().manual_seed(0))
    frames = u.flatten(0, 1).float()  # (20, 1, 64)
    projection = ModeProjection(1)
    assert projection(frames) is frames  # unfitted: the identity
    projection.fit([frames[:10], frames[10:]])
    assert projection.max_modes.tolist() == [64 // 3]
    torch.testing.assert_close(projection(frames), frames, rtol=0, atol=1e-5)
    noise = 1e-3 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(1))
    kept = projection(frames + noise) - frames
    assert kept.norm() < 0.9 * noise.norm()  # a third of the noise's modes are removed: about 0.82
    spectrum = torch.fft.rfft(kept, dim=-1).abs()
    assert spectrum[..., 64 // 3 + 1 :].max() < 1e-5 and spectrum[..., : 64 // 3 + 1].max() > 1e-3
    fine = torch.fft.irfft(torch.fft.rfft(frames, dim=-1), n=128, dim=-1) * 2  # the same fields on 128 nodes
    torch.testing.assert_close(projection(fine), fine, rtol=0, atol=1e-5)


def test_the_cut_is_found_per_axis_and_full_spectra_are_left_alone():
    x = torch.randn(3, 2, 16, 12, generator=torch.Generator().manual_seed(0))
    projection = ModeProjection(2)
    projection.fit([x])
    assert projection.max_modes.tolist() == [8, 6]
    torch.testing.assert_close(projection(x), x)
    x_hat = torch.fft.rfftn(x, dim=(2, 3))
    x_hat[:, :, 5:12] = 0  # |k_1| <= 4
    x_hat[..., 4:] = 0  # k_2 <= 3
    band = torch.fft.irfftn(x_hat, s=(16, 12), dim=(2, 3))
    projection.fit([band])
    assert projection.max_modes.tolist() == [4, 3]
    torch.testing.assert_close(projection(x), band, rtol=0, atol=1e-5)


@pytest.mark.parametrize("task", ["one_step", "refiner"])
def test_trained_time_steps_predict_no_energy_above_the_cut(task, tmp_path):
    from helpers import tiny_config

    from oplearn.config import load_config
    from oplearn.data.files import load_fields
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.training.run import load_run, train

    data = tmp_path / "ks.h5"
    pde = make_pde("kuramoto_sivashinsky", {"length": 32.0, "t_final": 4.0, "n_times": 5, "burn_in": 20.0})
    generate_dataset(pde, 10, 48, data, seed=0, progress=False)
    model = {"name": "fno", "modes": 24, "width": 8, "n_layers": 2, "projection_channels": 16}
    config = tiny_config(
        tmp_path / "c.yaml", data, epochs=1, model=model, task=task, positional_features=False, mode_projection=True
    )
    train(load_config(config), tmp_path / "run", progress=False)
    run, _ = load_run(tmp_path / "run")
    x = load_fields(data).outputs[:2, 0]  # frames of the data, (2, 1, 48): no energy above the cut
    with torch.no_grad():
        spectrum = torch.fft.rfft(run(x), dim=-1).abs()
    cut = 48 // 3
    assert spectrum[..., cut + 1 :].max() < 1e-4 * spectrum[..., : cut + 1].max()
    assert math.isfinite(float(spectrum.sum()))
