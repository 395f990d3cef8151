"""``oplearn solve wos`` end to end: estimates within their error bars, CSV output, one-line errors."""

import numpy as np
from helpers import run_cli


def test_solve_wos_end_to_end(tmp_path):
    points = tmp_path / "points.npy"
    np.save(points, np.array([[0.1, 0.7], [0.9, -0.5]]))
    out = tmp_path / "u.csv"
    proc = run_cli(
        "solve",
        "wos",
        "--domain",
        "box:-1,-1,1,1 - ball:0,0,0.3",
        "--boundary",
        "x**3 - 3*x*y**2",
        "--source",
        "0",
        "--exact",
        "x**3 - 3*x*y**2",
        "--point=-0.6,0.2",
        "--points",
        points,
        "--walks",
        "2000",
        "--out",
        out,
    )
    assert "walks per point" in proc.stdout
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert list(table.dtype.names) == ["x0", "x1", "mean", "stderr", "exact", "error"]
    assert len(table) == 3
    assert (np.abs(table["error"]) < 4.5 * table["stderr"]).all()


def test_solve_wos_bad_input_is_one_line():
    for args, message in (
        (["--domain", "ball:0,0", "--boundary", "x", "--point", "0,0"], "expected box:"),
        (["--domain", "ball:0,0,1", "--boundary", "__import__('os')", "--point", "0,0"], "is not allowed"),
        (["--domain", "ball:0,0,1", "--boundary", "x", "--point", "2,0"], "lies outside the domain"),
    ):
        proc = run_cli("solve", "wos", *args, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and message in proc.stderr and proc.stderr.count("\n") == 1
