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
    for i in bar:
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
