"""Live progress when stdout is not a terminal: StepLines' cadence, and a fresh ``tfphys-train``'s log."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tfphys.progress import StepLines

LINE = re.compile(r"^epoch (\d+)/(\d+) step (\d+)/(\d+) loss \S+ (?:\w+ \S+ )*\S+ img/s (?:ETA|in) \S+$")


def _fit(callback, epochs=2, steps=10):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4 * steps, 3), "float32")
    model.fit(x, x[:, :1], batch_size=4, epochs=epochs, callbacks=[callback], verbose=0, shuffle=False)


def test_lines_at_the_first_step_every_n_steps_and_the_last():
    log = io.StringIO()
    _fit(StepLines(batch_size=4, every_steps=3, stream=log))
    lines = log.getvalue().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(int(m[1]), int(m[3])) for m in parsed] == [(e, s) for e in (1, 2) for s in (1, 3, 6, 9, 10)]
    assert all(m[2] == "2" and m[4] == "10" for m in parsed)
    assert lines[-1].split()[-2] == "in" and lines[0].split()[-2] == "ETA"


def test_the_clock_cadence_and_the_rate_without_a_batch_size():
    log = io.StringIO()
    _fit(StepLines(every_s=3600, stream=log), epochs=1, steps=5)  # only the first and the last step
    lines = log.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["1/5", "5/5"]
    assert all("steps/s" in line for line in lines)
    with pytest.raises(ValueError, match="every_steps must be a positive number of steps, got 0"):
        StepLines(every_steps=0)


def test_a_fresh_tfphys_train_with_stdout_captured_prints_step_lines(tmp_path, tiny_config, qcd_file):
    train = Path(sys.executable).with_name("tfphys-train")
    done = subprocess.run([str(train), "codae", "--config", str(tiny_config), "--data", str(qcd_file),
                           "--epochs", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TFPHYS_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [m for m in map(LINE.match, done.stdout.splitlines()) if m]
    assert steps and steps[0][3] == "1" and steps[-1][3] == steps[-1][4], done.stdout
