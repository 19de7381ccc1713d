"""Bad waveform files: one line naming the file, the array and the first bad waveform; no run dir (issue 21)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tfphys.cbae import waveforms as wf
from tfphys.cli import train_main
from tfphys.errors import TfphysError


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "w.h5"
    wf.generate(16, path, seed=2, progress=False)
    return path


def _spoil(path, name, index, value):
    with h5py.File(path, "a") as f:
        f[name][index] = value


@pytest.mark.parametrize("name, index, value, message", [
    ("params", (2, 1), np.nan, "waveform 2 has non-finite \\(NaN or inf\\) values in 'params'"),
    ("waveforms", (5, 100), np.inf, "waveform 5 has non-finite \\(NaN or inf\\) values in 'waveforms'"),
    ("clean", (9, 0), np.nan, "waveform 9 has non-finite \\(NaN or inf\\) values in 'clean'"),
])
def test_non_finite_values_name_the_array_and_the_waveform(good, tmp_path, capsys, name, index, value, message):
    _spoil(good, name, index, value)
    with pytest.raises(TfphysError, match=f"data file {good}: {message}"):
        wf.read_waveforms(good)
    if name != "clean":  # training reads no clean curves
        out = tmp_path / "run"
        assert train_main(["cbae", "--data", str(good), "--out", str(out), "--epochs", "1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("tfphys-train: error: data file") and "waveform" in err[0]
        assert not out.exists()


def test_wrong_dtype_or_length_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["waveforms"] = np.array([[b"x"] * 1024] * 3)
        f["params"] = np.zeros((3, 2), np.float32)
        f["x"] = np.zeros(1024, np.float32)
    with pytest.raises(TfphysError, match="'waveforms' has dtype"):
        wf.read_waveforms(path)
    with h5py.File(path, "a") as f:
        del f["waveforms"]
        f["waveforms"] = np.zeros((4, 1024), np.float32)
    with pytest.raises(TfphysError, match="'params' holds 3 waveforms but 'waveforms' holds 4"):
        wf.read_waveforms(path)
