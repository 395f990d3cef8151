import math

import pytest
import torch

from oplearn.grids import Grid
from oplearn.losses import RelativeH1Loss, RelativeL2Loss
from oplearn.metrics import (
    METRICS,
    brmse,
    crmse,
    evaluate_metrics,
    frmse,
    max_error,
    nrmse,
    per_time_step,
    radial_mode_index,
    relative_h1,
    relative_l2,
    rmse,
    vrmse,
    vrmse_by_field,
    vrmse_per_channel,
    well_time_windows,
)


def periodic_1d(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=torch.float64) / n


def test_constant_errors():
    true = torch.full((2, 2, 4, 4), 2.0, dtype=torch.float64)
    pred = true + 0.5
    for metric, expected in ((relative_l2, 0.25), (rmse, 0.5), (nrmse, 0.25), (max_error, 0.5)):
        torch.testing.assert_close(metric(pred, true), torch.full((2,), expected, dtype=torch.float64))


def test_channels_pooled_or_averaged_as_defined():
    """Channel 0: t = 2, e = 0.5; channel 1: t = 4, e = 0.4 (4 points each)."""
    true = torch.stack([torch.full((4,), 2.0), torch.full((4,), 4.0)])[None].double()
    pred = true + torch.tensor([0.5, 0.4], dtype=torch.float64)[None, :, None]
    torch.testing.assert_close(relative_l2(pred, true), torch.tensor([math.sqrt(0.41 / 20)], dtype=torch.float64))
    torch.testing.assert_close(rmse(pred, true), torch.tensor([math.sqrt(0.41 / 2)], dtype=torch.float64))
    torch.testing.assert_close(nrmse(pred, true), torch.tensor([(0.25 + 0.1) / 2], dtype=torch.float64))


def test_max_error_finds_the_spike_per_sample():
    true = torch.zeros(2, 1, 5, 5)
    pred = true.clone()
    pred[0, 0, 1, 3] = -3.0
    pred[1, 0, 4, 0] = 0.5
    torch.testing.assert_close(max_error(pred, true), torch.tensor([3.0, 0.5]))


def test_relative_l2_is_resolution_consistent():
    values = []
    for n in (16, 64):
        x = periodic_1d(n)
        true = torch.sin(2 * math.pi * x)[None, None]
        values.append(relative_l2(true + 0.1 * torch.cos(6 * math.pi * x), true))
    torch.testing.assert_close(values[0], values[1])
    torch.testing.assert_close(values[0], torch.tensor([0.1], dtype=torch.float64))


def test_relative_h1_of_sinusoids():
    """t = cos(2 pi x), e = 0.3 sin(4 pi x): ratio 0.09 (1 + 16 pi^2) / (1 + 4 pi^2)."""
    expected = 0.3 * math.sqrt((1 + 16 * math.pi**2) / (1 + 4 * math.pi**2))
    for n in (16, 32):
        x = periodic_1d(n)
        true = torch.cos(2 * math.pi * x)[None, None]
        pred = true + 0.3 * torch.sin(4 * math.pi * x)
        value = relative_h1(pred, true, Grid((n,), periodic=True))
        torch.testing.assert_close(value, torch.tensor([expected], dtype=torch.float64))


def test_relative_h1_on_bounded_grid_converges_to_the_integral():
    """t = sin(pi x) sin(pi y), e = 0.1 x y on [0, 1]^2: the exact ratio is
    (1/900 + 2/300) / (1/4 + pi^2/2). Node sums that include both boundaries converge at
    first order (the cell volume cancels, the boundary rows do not)."""
    exact = math.sqrt((1 / 900 + 2 / 300) / (1 / 4 + math.pi**2 / 2))

    def error(n):
        grid = Grid((n, n))
        x, y = grid.coordinates(torch.float64)
        true = torch.sin(math.pi * x) * torch.sin(math.pi * y)
        pred = true + 0.1 * x * y
        return abs(relative_h1(pred[None, None], true[None, None], grid).item() - exact)

    assert error(129) < 5e-3 * exact
    assert 0.4 < error(257) / error(129) < 0.6


def test_vrmse_of_the_mean_prediction():
    """The Well divides the variance by N - 1 (torch.std): the mean prediction scores sqrt((N - 1) / N)."""
    torch.manual_seed(0)
    true = torch.randn(3, 2, 16, 16, dtype=torch.float64) * 5 + 7
    pred = true.mean(dim=(2, 3), keepdim=True).expand_as(true)
    expected = math.sqrt(255 / 256)
    torch.testing.assert_close(vrmse(pred, true), torch.full((3,), expected, dtype=torch.float64), rtol=1e-8, atol=0)


def test_vrmse_known_value():
    x = periodic_1d(32)
    true = torch.sin(2 * math.pi * x)[None, None]  # mean square 1/2, unbiased variance 16/31
    expected = math.sqrt(0.01 / (16 / 31 + 1e-7))
    torch.testing.assert_close(vrmse(true + 0.1, true), torch.tensor([expected], dtype=torch.float64))


def test_brmse_sees_only_the_faces_of_the_box():
    true = torch.zeros(2, 1, 6, 5, dtype=torch.float64)
    interior = true.clone()
    interior[:, :, 1:-1, 1:-1] = 3.0
    assert brmse(interior, true).abs().max() == 0
    on_faces = torch.full_like(true, 2.0)
    torch.testing.assert_close(brmse(on_faces, true), torch.full((2,), 2.0, dtype=torch.float64))
    # 1D: sqrt((e_0^2 + e_-1^2) / 2); 2D: the faces' nodes (2 nx + 2 ny, corners twice)
    line = torch.tensor([[[3.0, 9.0, 9.0, 4.0]]], dtype=torch.float64)
    torch.testing.assert_close(
        brmse(line, torch.zeros_like(line)), torch.tensor([math.sqrt((9 + 16) / 2)], dtype=torch.float64)
    )
    one_corner = torch.zeros(1, 1, 6, 5, dtype=torch.float64)
    one_corner[0, 0, 0, 0] = 1.0  # lies on two faces
    torch.testing.assert_close(
        brmse(one_corner, torch.zeros_like(one_corner)),
        torch.tensor([math.sqrt(2 / (2 * 6 + 2 * 5))], dtype=torch.float64),
    )


def test_crmse_is_the_root_mean_square_over_samples_of_the_mean_error():
    grid = Grid((16,), periodic=True)
    x = periodic_1d(16)
    shifts = torch.tensor([0.1, -0.3, 0.2], dtype=torch.float64)
    true = torch.randn(3, 1, 16, dtype=torch.float64)
    pred = true + shifts[:, None, None] + torch.sin(2 * math.pi * x)  # the wave has zero mean
    torch.testing.assert_close(crmse(pred, true)[:, 0], shifts)
    out = evaluate_metrics(pred, true, grid)
    assert out["crmse"] == pytest.approx(shifts.square().mean().sqrt().item(), rel=1e-12)


def test_well_time_windows_match_the_well_trainer():
    """num_time_intervals = 5: bounds 0 and int(exp(x)) for x evenly spaced in [0, log T]."""
    assert well_time_windows(100) == [(0, 1), (1, 3), (3, 10), (10, 31), (31, 100)]
    assert well_time_windows(10) == [(0, 1), (1, 3), (3, 5), (5, 10)]  # the empty window 1:1 is dropped
    assert well_time_windows(1) == [(0, 1)]


def test_vrmse_by_field_per_channel_and_window():
    torch.manual_seed(2)
    true = torch.randn(4, 10, 2, 8, 8, dtype=torch.float64)
    scale = torch.tensor([0.1, 0.5], dtype=torch.float64)
    steps = torch.linspace(1, 2, 10, dtype=torch.float64)
    noise = torch.randn_like(true)
    pred = true + noise * scale[None, None, :, None, None] * steps[None, :, None, None, None]
    out = vrmse_by_field(pred, true, ["u", "v"])
    per = per_time_step(vrmse_per_channel, pred, true).mean(dim=0)  # (time, channels)
    assert out["u"]["all"] == pytest.approx(per[:, 0].mean().item()) and out["v"]["3:5"] == pytest.approx(
        per[3:5, 1].mean().item()
    )
    assert out["full"]["5:10"] == pytest.approx(per[5:10].mean().item())
    assert out["v"]["all"] > 4 * out["u"]["all"] and out["u"]["5:10"] > out["u"]["0:1"]
    steady = vrmse_by_field(pred[:, :1], true[:, :1], ["u", "v"])
    assert set(steady["u"]) == {"all"}


def test_radial_mode_index():
    r = radial_mode_index((8, 6))
    assert r[0, 0] == 0 and r[3, 0] == 3 and r[-3, 0] == 3 and r[4, 0] == 4  # Nyquist row -4
    assert r[1, 1] == 1 and r[2, -2] == 2 and r[3, 3] == 4  # floor(2.83) = 2, floor(4.24) = 4
    assert r.shape == (8, 6)


@pytest.mark.parametrize(
    "k, band",
    [
        ((2, 0), "low"),
        ((2, 3), "low"),
        ((3, 3), "mid"),
        ((0, 11), "mid"),
        ((3, -4), "mid"),
        ((12, 0), "high"),
        ((9, 9), "high"),
    ],
)
def test_frmse_puts_a_sinusoid_in_its_band(k, band):
    """e = A sin(2 pi k.x) carries |e_hat| = A / 2 at +-k, so its band scores A / sqrt 2."""
    n = 32
    X, Y = torch.meshgrid(periodic_1d(n), periodic_1d(n), indexing="ij")
    amplitude = 0.7
    true = torch.cos(2 * math.pi * X)[None, None].repeat(2, 3, 1, 1)
    pred = true + amplitude * torch.sin(2 * math.pi * (k[0] * X + k[1] * Y))
    bands = frmse(pred, true)
    assert set(bands) == {"low", "mid", "high"}
    for name, value in bands.items():
        expected = amplitude / math.sqrt(2) if name == band else 0.0
        torch.testing.assert_close(value, torch.full((2,), expected, dtype=torch.float64), atol=1e-12, rtol=1e-12)


def test_frmse_bands_split_the_rmse():
    torch.manual_seed(1)
    pred, true = torch.randn(4, 2, 20, 24, dtype=torch.float64), torch.randn(4, 2, 20, 24, dtype=torch.float64)
    bands = frmse(pred, true)
    torch.testing.assert_close(sum(v.square() for v in bands.values()), rmse(pred, true).square())


def test_frmse_1d_and_3d():
    x = periodic_1d(16)
    true = torch.zeros(1, 1, 16, dtype=torch.float64)
    mid = frmse(true + torch.cos(2 * math.pi * 5 * x), true)["mid"]
    torch.testing.assert_close(mid, torch.tensor([math.sqrt(0.5)], dtype=torch.float64))
    e = torch.randn(2, 1, 6, 6, 6, dtype=torch.float64)
    bands = frmse(e, torch.zeros_like(e))
    torch.testing.assert_close(sum(v.square() for v in bands.values()), rmse(e, torch.zeros_like(e)).square())


def test_per_time_step_scores_each_step():
    torch.manual_seed(2)
    pred, true = torch.randn(3, 5, 2, 8, 8), torch.randn(3, 5, 2, 8, 8)
    values = per_time_step(nrmse, pred, true)
    assert values.shape == (3, 5)
    torch.testing.assert_close(values[:, 3], nrmse(pred[:, 3], true[:, 3]))
    bands = per_time_step(frmse, pred, true)
    torch.testing.assert_close(bands["low"][1], frmse(pred[1], true[1])["low"])


def test_evaluate_metrics_keys_and_values():
    grid = Grid((16, 16), periodic=True)
    torch.manual_seed(3)
    true = torch.randn(4, 1, 16, 16)
    pred = true + 0.1
    out = evaluate_metrics(pred, true, grid)
    expected_keys = {name for name in METRICS if name != "frmse"} | {"frmse_low", "frmse_mid", "frmse_high"}
    assert set(out) == expected_keys
    assert all(isinstance(v, float) for v in out.values())
    assert out["rmse"] == pytest.approx(0.1, rel=1e-6) and out["frmse_low"] == pytest.approx(0.1, rel=1e-6)
    assert out["relative_l2"] == pytest.approx(relative_l2(pred.double(), true.double()).mean().item())


def test_evaluate_metrics_on_trajectories():
    grid = Grid((8, 8))
    torch.manual_seed(4)
    true = torch.randn(3, 4, 2, 8, 8, dtype=torch.float64)
    pred = true * 1.1
    out = evaluate_metrics(pred, true, grid)
    assert out["nrmse"] == pytest.approx(0.1, rel=1e-9)
    assert out["relative_l2"] == pytest.approx(0.1, rel=1e-9)
    with pytest.raises(ValueError, match="grid shape"):
        evaluate_metrics(pred, true, Grid((8, 9)))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        rmse(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))


def test_losses_are_batch_means_of_the_metrics():
    grid = Grid((12, 12))
    torch.manual_seed(5)
    true = torch.randn(3, 2, 12, 12)
    pred = (true + 0.2 * torch.randn(3, 2, 12, 12)).requires_grad_()
    l2 = RelativeL2Loss()(pred, true)
    h1 = RelativeH1Loss()(pred, true, grid)
    torch.testing.assert_close(l2, relative_l2(pred, true).mean())
    torch.testing.assert_close(h1, relative_h1(pred, true, grid).mean())
    (l2 + h1).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
