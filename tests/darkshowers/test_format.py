"""The HDF5 contract: round trip, summary, and one clear error per kind of bad file."""

import h5py
import numpy as np
import pytest

from tests.conftest import sparse_events
from tfphys.darkshowers import format as formats
from tfphys.errors import TfphysError


def test_round_trip_keeps_every_dataset_exactly(tmp_path):
    events = sparse_events(5, label=2, mass=3100.0)
    path = tmp_path / "x.h5"
    assert formats.write_darkshowers(path, [events, events], generator="test", seed=3) == 10
    with formats.open_darkshowers(path) as f:
        assert f.attrs["format"] == formats.DARKSHOWERS_FORMAT
        assert f.attrs["seed"] == 3
        for name, (dtype, shape) in formats.DARKSHOWERS_DATASETS.items():
            assert f[name].dtype == dtype and f[name].shape == (10, *shape)
            np.testing.assert_array_equal(f[name][5:], events[name])
    assert "svj" in formats.summary(path) and "3100" in formats.summary(path)


def _write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("not hdf5"), "not a readable HDF5"),
        (lambda p: _write_raw(p, images=np.zeros((2, 360, 286, 3), np.float32)), "lacks dataset"),
        (lambda p: _write_raw(p, images=np.zeros((2, 286, 360, 3), np.float32),
                              label=np.zeros(2, np.int8), mass=np.zeros(2, np.float32),
                              n_tracks=np.zeros(2, np.int32)), "per-event shape"),
        (lambda p: _write_raw(p, images=np.zeros((2, 360, 286, 3), np.float32),
                              label=np.zeros(3, np.int8), mass=np.zeros(2, np.float32),
                              n_tracks=np.zeros(2, np.int32)), "holds 3 events"),
        (lambda p: _write_raw(p, images=np.zeros((0, 360, 286, 3), np.float32),
                              label=np.zeros(0, np.int8), mass=np.zeros(0, np.float32),
                              n_tracks=np.zeros(0, np.int32)), "no events"),
        (lambda p: _write_raw(p, images=np.zeros((1, 360, 286, 3), np.float32),
                              label=np.full(1, 5, np.int8), mass=np.zeros(1, np.float32),
                              n_tracks=np.zeros(1, np.int32)), "unknown class label"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.h5"
    make(path)
    with pytest.raises(TfphysError, match=message):
        formats.open_darkshowers(path)


def test_check_pixels_names_the_event():
    images = np.zeros((3, 2, 2), np.float32)
    images[2, 1, 0] = np.nan
    with pytest.raises(TfphysError, match="event 12 has non-finite"):
        formats.check_pixels(images, "f.h5", 10)


def test_a_chunk_of_the_wrong_shape_is_refused_and_the_written_chunks_are_kept(tmp_path):
    path = tmp_path / "d.h5"
    good, bad = sparse_events(8, seed=1), sparse_events(4, seed=2)
    bad["n_tracks"] = bad["n_tracks"][:3]  # one value short
    with formats.DarkShowerWriter(path, generator="test") as out:
        out.append(good)
        with pytest.raises(TfphysError, match=r"n_tracks: expected shape \(4,\), got \(3,\)"):
            out.append(bad)
        assert len(out) == 8
    with formats.open_darkshowers(path) as f:
        assert all(f[name].shape[0] == 8 for name in formats.DARKSHOWERS_DATASETS)
        np.testing.assert_array_equal(f["n_tracks"][:], good["n_tracks"])
