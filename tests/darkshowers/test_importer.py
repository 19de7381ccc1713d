"""Importing users' own images (``tfphys.darkshowers.importer``, ``tfphys-data import``)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tests.conftest import sparse_events
from tfphys.cli import data_main
from tfphys.darkshowers import format as formats
from tfphys.darkshowers import importer
from tfphys.errors import TfphysError


def _events(n=6, seed=0):
    events = sparse_events(n, seed=seed)
    events["label"][n // 2:] = 1
    events["mass"][n // 2:] = 400.0
    events["n_tracks"] = events["n_tracks"] + 7  # not derivable from the pixels: must be kept
    return events


def _read(path):
    with formats.open_darkshowers(path) as f:
        return {name: f[name][:] for name in formats.DARKSHOWERS_DATASETS}, dict(f.attrs)


def test_npz_in_the_papers_layout_round_trips(tmp_path):
    events = _events()
    src, out = tmp_path / "mine.npz", tmp_path / "mine.h5"
    np.savez_compressed(src, **{k: v.astype(np.float64) if k == "images" else v for k, v in events.items()})
    assert data_main(["import", str(src), "--out", str(out)]) == 0
    stored, attrs = _read(out)
    for key, value in events.items():
        np.testing.assert_array_equal(stored[key], value)
        assert stored[key].dtype == formats.DARKSHOWERS_DATASETS[key][0]
    assert attrs["generator"] == "import:mine.npz" and attrs["n_tracks_source"] == "n_tracks"
    assert not (tmp_path / "mine.h5.part").exists()


def test_hdf5_eta_by_phi_needs_and_obeys_transpose(tmp_path, capsys):
    events = _events(4)
    src = tmp_path / "theirs.h5"
    with h5py.File(src, "w") as f:
        f["calo"] = events["images"].swapaxes(1, 2)  # (N, 286 η, 360 φ, 3)
        f["y"] = events["label"].astype(np.int64)
        f["m"] = events["mass"]
    base = ["import", str(src), "--images-key", "calo", "--label-key", "y", "--mass-key", "m"]
    assert data_main([*base, "--out", str(tmp_path / "a.h5")]) == 1
    assert "looks like η × φ (286 × 360): add --transpose" in capsys.readouterr().err
    out = tmp_path / "b.h5"
    assert data_main([*base, "--transpose", "--out", str(out)]) == 0
    assert "lower bound" in capsys.readouterr().out  # no n_tracks array: tracker pixels counted
    stored, attrs = _read(out)
    np.testing.assert_array_equal(stored["images"], events["images"])
    np.testing.assert_array_equal(stored["n_tracks"], (events["images"][..., 0] > 0).sum(axis=(1, 2)))
    assert attrs["n_tracks_source"] == "tracker pixels"


def test_one_label_and_mass_for_the_whole_file(tmp_path):
    src = tmp_path / "suep.npz"
    np.savez(src, images=_events(3)["images"])
    result = importer.import_images(src, tmp_path / "o.h5", label=1, mass=125.0, progress=False)
    assert result["events"] == 3
    stored, _ = _read(tmp_path / "o.h5")
    np.testing.assert_array_equal(stored["label"], 1)
    np.testing.assert_array_equal(stored["mass"], 125.0)


def test_a_tfphys_file_is_usable_in_place(qcd_file, capsys):
    assert data_main(["import", str(qcd_file)]) == 0
    assert "already in the tfphys format: use it in place" in capsys.readouterr().out


def test_check_only_without_out(tmp_path, capsys):
    src = tmp_path / "x.npz"
    np.savez(src, **_events(2))
    assert data_main(["import", str(src)]) == 0
    assert "2 events pass the checks; write them with --out" in capsys.readouterr().out


def _bad(tmp_path, **changes):
    arrays = {**_events(4), **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    src = tmp_path / "bad.npz"
    np.savez(src, **arrays)
    return src


@pytest.mark.parametrize("changes, kwargs, message", [
    ({"images": np.zeros((4, 360, 286))}, {}, r"shape \(4, 360, 286\); expected \(N, 360, 286, 3\)"),
    ({"images": np.zeros((4, 360, 286, 3), bool)}, {}, "dtype bool; expected real numbers"),
    ({"images": np.zeros((0, 360, 286, 3), np.float32), "label": np.zeros(0, np.int8),
      "mass": np.zeros(0), "n_tracks": np.zeros(0, np.int32)}, {}, "holds no events"),
    ({"label": np.array([0, 3, 0, 0])}, {}, r"unknown class label\(s\) \[3\]"),
    ({"label": np.array([0, 0.5, 0, 0])}, {}, "'label' of event 1 is 0.5; expected an integer"),
    ({"label": np.zeros(5, np.int8)}, {}, r"'label' has shape \(5,\); expected \(4,\)"),
    ({"label": None}, {}, "no 'label' array: give the class of every event with --label"),
    ({}, {"label": 0}, "has its own 'label' array; drop --label"),
    ({"mass": None}, {}, "signal events but no 'mass' array"),
    ({"n_tracks": np.array([1, -2, 3, 4])}, {}, "'n_tracks' of event 1 is -2; expected a finite value ≥ 0"),
    ({"images": None}, {}, "has no 'images' array; it holds label, mass, n_tracks"),
])
def test_bad_input_gives_one_clear_error(tmp_path, changes, kwargs, message):
    src = _bad(tmp_path, **changes)
    with pytest.raises(TfphysError, match=message):
        importer.import_images(src, tmp_path / "out.h5", progress=False, **kwargs)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("value, message", [(np.nan, "event 2 has non-finite"),
                                            (-1.0, "event 2 has negative pixels")])
def test_bad_pixels_name_the_event_and_leave_nothing(tmp_path, value, message):
    events = _events(4)
    events["images"][2, 10, 20, 1] = value
    src = tmp_path / "px.npz"
    np.savez(src, **events)
    with pytest.raises(TfphysError, match=message):
        importer.import_images(src, tmp_path / "out.h5", progress=False, chunk_events=2)
    assert not (tmp_path / "out.h5").exists() and not (tmp_path / "out.h5.part").exists()


def test_not_hdf5_nor_npz(tmp_path, capsys):
    src = tmp_path / "notes.txt"
    src.write_text("not an image file")
    assert data_main(["import", str(src), "--out", str(tmp_path / "o.h5")]) == 1
    assert "neither an HDF5 file nor a NumPy .npz archive" in capsys.readouterr().err
    npy = tmp_path / "images.npy"
    np.save(npy, np.zeros((1, 360, 286, 3), np.float32))
    with pytest.raises(TfphysError, match="single .npy array"):
        importer.import_images(npy, tmp_path / "o.h5")
    with pytest.raises(TfphysError, match="does not exist"):
        importer.import_images(tmp_path / "missing.h5", tmp_path / "o.h5")
