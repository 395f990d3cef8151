"""Progress in a log: timed plain lines with an estimate of the time left."""

import io

from oplearn.progress import LogProgress, format_seconds, progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_log_lines_are_timed_and_estimate_the_time_left(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("oplearn.progress.time.monotonic", clock)
    out = io.StringIO()
    bar = LogProgress(range(10), desc="train", unit="epoch", interval=30, file=out)
    for _i in bar:
        clock.now += 10.0  # ten seconds an item: a line every third item
        bar.set_postfix({"loss": "0.5"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # at 30, 60 and 90 s, and the final line
    assert lines[0] == "train: 3/10 epoch (30%), 30.0s elapsed, ~1m10s left, loss=0.5"
    assert lines[-1] == "train: 10/10 epoch (100%), 1m40s elapsed, loss=0.5"


def test_a_resumed_count_estimates_from_its_own_rate(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("oplearn.progress.time.monotonic", clock)
    out = io.StringIO()
    bar = LogProgress(total=100, initial=50, unit="sample", interval=1, file=out)
    clock.now = 10.0
    bar.update(10)  # 10 samples in 10 s: 40 left take 40 s
    assert out.getvalue().strip() == "60/100 sample (60%), 10.0s elapsed, ~40.0s left"


def test_terminal_gets_a_bar_and_a_log_gets_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert not isinstance(progress(range(3), file=Terminal()), LogProgress)
    assert isinstance(progress(range(3), file=io.StringIO()), LogProgress)
    quiet = io.StringIO()
    for _ in progress(range(3), enabled=False, file=quiet):
        pass
    assert quiet.getvalue() == ""


def test_format_seconds():
    assert [format_seconds(s) for s in (7.46, 83.2, 4000)] == ["7.5s", "1m23s", "1h06m"]


def test_time_steps_move_the_bar_inside_a_chunk(tmp_path, monkeypatch, capsys):
    """A time-dependent chunk reports its time steps: the log shows fractions of samples and the time
    left before the chunk (here the whole dataset) is done."""
    from oplearn.data.generate import generate_dataset, make_pde

    monkeypatch.setenv("OPLEARN_PROGRESS_INTERVAL", "0")
    pde = make_pde("burgers_pdebench", {"t_final": 0.01, "n_times": 5, "dt": 0.001})
    generate_dataset(pde, 2, 32, tmp_path / "b.h5", chunk_size=2, progress=True)
    lines = capsys.readouterr().err.splitlines()
    inside = [
        line
        for line in lines
        if "/2 sample" in line and "left" in line and not line.split(": ")[1].startswith(("0/", "2/"))
    ]
    assert len(inside) >= 5, lines  # ten steps in one chunk of two samples
    assert lines[-1].startswith("burgers_pdebench 32: 2/2 sample (100%)")


def test_nested_parts_map_into_the_enclosing_share():
    from oplearn.progress import fraction_done, part, reporting

    seen = []
    with reporting(seen.append):
        with part(0.5, 1.0):
            fraction_done(0.5)
            with part(0.0, 0.5):
                fraction_done(1.0)
        fraction_done(2.0)  # clipped to the unit
    fraction_done(0.3)  # no reporter: nothing
    assert seen == [0.75, 0.75, 1.0]


def test_training_progress_moves_batch_by_batch(tmp_path, monkeypatch, capsys):
    """An epoch that takes minutes still shows its progress in a log."""
    from helpers import tiny_config

    from oplearn.config import load_config
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.training.run import train

    data = generate_dataset(make_pde("darcy"), 20, 8, tmp_path / "d.h5", progress=False)
    monkeypatch.setenv("OPLEARN_PROGRESS_INTERVAL", "0")
    config = load_config(tiny_config(tmp_path / "c.yaml", data, epochs=1), ["data.batch_size=4", "model.modes=2"])
    train(config, tmp_path / "run", progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("train: ")]
    assert [line.split(",")[0] for line in lines[:3]] == [
        "train: 0.3/1 epoch (33%)",
        "train: 0.7/1 epoch (67%)",
        "train: 1/1 epoch (100%)",
    ]
    assert "left" in lines[0] and "val_relative_l2" in lines[-1]
