"""Bad ALBUS map files: one line naming the file, the array and the first bad map (issue 21)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tfphys.albus import storage
from tfphys.errors import TfphysError


def _map_file(path, n=3, t=4, f=5):
    with h5py.File(path, "w") as out:
        out.attrs["format"] = storage.ALBUS_FORMAT
        out["maps"] = np.zeros((n, t, f, 3), np.uint8)
        out["targets"] = np.zeros((n, t, f), np.float16)
        out["kind"] = np.zeros(n, np.int8)
        for name, (dtype, empty) in storage.PARAMS.items():
            out[name] = np.full(n, empty, dtype)
    return path


def test_a_valid_hand_made_file_passes(tmp_path):
    with storage.open_albus(_map_file(tmp_path / "ok.h5")) as f:
        assert f["maps"].shape[0] == 3


@pytest.mark.parametrize("spoil, message", [
    (lambda f: f["visibility"].__setitem__(1, np.inf), "'visibility' of map 1 is inf; expected a finite value"),
    (lambda f: f["hrss"].__setitem__(2, np.nan), "'hrss' of map 2 is nan"),
    (lambda f: f["kind"].__setitem__(0, 7), r"unknown map kind\(s\) \[7\]"),
    (lambda f: (f.__delitem__("maps"), f.create_dataset("maps", data=np.zeros((3, 4, 5, 3), np.float32))),
     "'maps' must be uint8"),
    (lambda f: (f.__delitem__("targets"), f.create_dataset("targets", data=np.zeros((3, 4, 6), np.float16))),
     "'targets' \\(3, 4, 6\\) does not match 'maps'"),
    (lambda f: (f.__delitem__("slide_s"), f.create_dataset("slide_s", data=np.zeros(2, np.float32))),
     "'slide_s' holds \\(2,\\) values for 3 maps"),
])
def test_bad_files_give_one_line(tmp_path, spoil, message):
    path = _map_file(tmp_path / "bad.h5")
    with h5py.File(path, "a") as f:
        spoil(f)
    with pytest.raises(TfphysError, match=f"data file {path}: {message}" if "kind" not in message else message):
        storage.open_albus(path)
