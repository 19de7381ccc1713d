"""Bad dark-shower input: one contract for every reader (issue 21).

``tfphys-data import``, ``tfphys-train --data``, ``tfphys-eval --data`` and ``tfphys-score`` read
through :func:`tfphys.darkshowers.format.open_darkshowers` (header: names, shapes, dtypes, lengths,
labels, mass and n_tracks finite and ≥ 0) and :func:`~tfphys.darkshowers.format.check_pixels`
(every image read: finite, ≥ 0), so each refuses the same files with one line naming the file, the
array and the first bad event — and leaves nothing behind.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from tests.conftest import sparse_events
from tfphys.cli import data_main, train_main
from tfphys.darkshowers import format as formats
from tfphys.darkshowers import importer
from tfphys.errors import TfphysError


def _file(path, change):
    events = sparse_events(24, seed=4)
    change(events)
    formats.write_darkshowers(path, [events], generator="test")
    return path


def _set(name, index, value):
    def change(events):
        events[name][index] = value
    return change


BAD = [  # (how the file is spoiled, what the one line says)
    (_set("images", (9, 3, 3, 1), np.nan), "'images' event 9 has non-finite"),
    (_set("images", (13, 3, 3, 2), np.inf), "'images' event 13 has non-finite"),
    (_set("images", (5, 3, 3, 1), -0.5), "'images' event 5 has negative pixels"),
    (_set("mass", 7, -125.0), "'mass' of event 7 is -125; expected a finite value ≥ 0"),
    (_set("mass", 2, np.nan), "'mass' of event 2 is nan; expected a finite value"),
    (_set("n_tracks", 11, -3), "'n_tracks' of event 11 is -3"),
    (_set("label", 4, 7), r"unknown class label\(s\) \[7\]"),
]
IDS = ["nan-pixel", "inf-pixel", "negative-pixel", "negative-mass", "nan-mass", "negative-tracks", "label"]


@pytest.mark.parametrize("change, message", BAD, ids=IDS)
def test_train_and_import_refuse_the_same_files_with_one_line(tmp_path, tiny_config, capsys, change, message):
    data = _file(tmp_path / "bad.h5", change)
    out = tmp_path / "run"
    assert train_main(["codae", "--config", str(tiny_config), "--data", str(data), "--out", str(out),
                       "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tfphys-train: error: data file {data}"), err
    assert re.search(message, err[0]), err[0]
    assert not out.exists()  # a refused file — found before or while training streams it — leaves no run dir
    # the importer applies the same contract (here: to a copy in a foreign layout, as an .npz)
    with h5py.File(data, "r") as f:
        arrays = {k: f[k][()] for k in f}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TfphysError, match=message.replace("data file ", "")):
        importer.import_images(tmp_path / "bad.npz", tmp_path / "out.h5", progress=False)
    assert not (tmp_path / "out.h5").exists() and list(tmp_path.glob(".out*")) == []


def test_an_object_array_or_a_pickle_is_refused_never_loaded(tmp_path, capsys):
    src = tmp_path / "x.npz"
    np.savez(src, images=np.array([object(), object()], dtype=object), label=np.zeros(2))
    assert data_main(["import", str(src), "--out", str(tmp_path / "o.h5")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"tfphys-data: error: {src}: 'images' is an object array (pickled Python objects, which are "
                   "never loaded); save numbers, e.g. np.asarray(images, np.float32)"]
    pickled = tmp_path / "p.npy"
    np.save(pickled, np.array([{"images": 1}], dtype=object), allow_pickle=True)
    assert data_main(["import", str(pickled), "--out", str(tmp_path / "o.h5")]) == 1
    assert "neither an HDF5 file nor a NumPy .npz archive" in capsys.readouterr().err
    truncated = tmp_path / "t.npz"
    truncated.write_bytes((tmp_path / "x.npz").read_bytes()[:40])
    assert data_main(["import", str(truncated), "--out", str(tmp_path / "o.h5")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o.h5").exists()


def test_an_hdf5_file_of_the_wrong_dtype_or_length_is_refused(tmp_path, tiny_config, capsys):
    path = tmp_path / "strings.h5"
    events = sparse_events(4, seed=1)
    with h5py.File(path, "w") as f:
        f["images"] = events["images"]
        f["label"] = np.array([b"qcd"] * 4)
        f["mass"], f["n_tracks"] = events["mass"], events["n_tracks"][:3]
    with pytest.raises(TfphysError, match="'label' has dtype"):
        formats.open_darkshowers(path)
    with h5py.File(path, "a") as f:
        del f["label"]
        f["label"] = events["label"]
    with pytest.raises(TfphysError, match="'n_tracks' holds 3 events but 'images' holds 4"):
        formats.open_darkshowers(path)
