"""The on-disk contract of tfphys data files (HDF5 through h5py).

Dark-shower collision images (``format = "tfphys.darkshowers"``, version 1)
--------------------------------------------------------------------------
Users with their own samples write files of exactly this layout; every pipeline, model and
evaluation in tfphys then works on them unchanged.

==============  ===========  ========================  ===========================================
dataset         dtype        shape                     meaning
==============  ===========  ========================  ===========================================
``images``      float32      (N, 360, 286, 3)          E_T / p_T deposits in GeV. Axes: event,
                                                       φ row (1° each, φ ∈ [−π, π)), η column
                                                       (0.0174 each, |η| < 2.488), channel
                                                       (0 tracker p_T, 1 ECAL E_T, 2 HCAL E_T;
                                                       HCAL up-sampled ×25 with 1/25 of the
                                                       energy per pixel, paper §1.2).
``label``       int8         (N,)                      0 QCD, 1 SUEP, 2 SVJ (paper §3).
``mass``        float32      (N,)                      mediator mass in GeV: m_H for SUEP,
                                                       m_Z' for SVJ (2100 = 2.1 TeV), 0 for QCD.
``n_tracks``    int32        (N,)                      reconstructed charged tracks (nTracks).
==============  ===========  ========================  ===========================================

File attributes: ``format``, ``version``, ``generator`` (who wrote it), ``seed`` (if generated).
``images`` is chunked one event per chunk and gzip-compressed at level 1, so a random event costs
one decompression and a sparse image takes ~7 kB on disk. Level 1 (without the shuffle filter)
reads ~5× faster here than level 4 for a 2.7× larger file; reading is what the training pipeline
waits for (``tools/bench_codae_throughput.py``).

Every reader validates the header (names, shapes, dtypes, lengths, N > 0) with one clear
:class:`~tfphys.errors.TfphysError` per failure; pixel values are checked for finiteness as they
are read (:func:`check_pixels`: finite and ≥ 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import h5py
import numpy as np

from tfphys.errors import TfphysError
from tfphys.hdf5 import ChunkWriter, open_validated

DARKSHOWERS_FORMAT = "tfphys.darkshowers"
DARKSHOWERS_VERSION = 1
IMAGE_SHAPE = (360, 286, 3)
CHANNELS = ("tracker", "ecal", "hcal")
CLASS_NAMES = {0: "qcd", 1: "suep", 2: "svj"}
#: dataset name -> (dtype, per-event shape)
DARKSHOWERS_DATASETS = {
    "images": (np.float32, IMAGE_SHAPE),
    "label": (np.int8, ()),
    "mass": (np.float32, ()),
    "n_tracks": (np.int32, ()),
}


class DarkShowerWriter(ChunkWriter):
    """Append chunks of events to a new dark-shower file.

    Each :meth:`append` is flushed to disk; the file appears under ``path`` when the writer closes
    without an error (:class:`tfphys.hdf5.ChunkWriter`: ``keep_partial`` keeps an interrupted
    file's finished chunks in ``PATH.part`` for a resume).

    Example::

        with DarkShowerWriter("qcd.h5", generator="toy", seed=1) as out:
            out.append(toy.simulate("qcd", 256, seed=...))
    """

    length_key = "label"

    def __init__(self, path: str | os.PathLike, *, generator: str, seed: int | None = None,
                 compression_level: int = 1, keep_partial: bool = False):
        super().__init__(path, seed=seed, keep_partial=keep_partial, format=DARKSHOWERS_FORMAT,
                         version=DARKSHOWERS_VERSION, generator=generator)
        for name, (dtype, shape) in DARKSHOWERS_DATASETS.items():
            chunks = (1, *shape) if shape else (4096,)
            self._file.create_dataset(
                name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype, chunks=chunks,
                compression="gzip", compression_opts=compression_level,
            )
        self._file["images"].attrs.update(
            axes="event,phi,eta,channel", units="GeV", channels=",".join(CHANNELS))
        self._file["mass"].attrs["units"] = "GeV"

    def append(self, events: Mapping[str, np.ndarray]) -> None:
        self._append({name: events[name] for name in DARKSHOWERS_DATASETS})


def write_darkshowers(path, chunks: Iterable[Mapping[str, np.ndarray]], *, generator: str,
                      seed: int | None = None) -> int:
    """Write an iterable of event chunks to ``path``; return the number of events written."""
    with DarkShowerWriter(path, generator=generator, seed=seed) as out:
        for chunk in chunks:
            out.append(chunk)
        return len(out)


def open_darkshowers(path: str | os.PathLike) -> h5py.File:
    """Open a dark-shower file read-only after validating its header; the caller closes it."""
    return open_validated(path, validate_header)


def validate_header(f: h5py.File, path) -> int:
    """Check dataset names, dtypes, shapes and lengths; return the number of events N."""
    missing = [name for name in DARKSHOWERS_DATASETS if name not in f]
    if missing:
        raise TfphysError(
            f"data file {path} lacks dataset(s) {', '.join(missing)}; a dark-shower file needs "
            f"{', '.join(DARKSHOWERS_DATASETS)} (see tfphys/darkshowers/format.py)"
        )
    n = None
    for name, (dtype, shape) in DARKSHOWERS_DATASETS.items():
        ds = f[name]
        if ds.shape[1:] != shape:
            raise TfphysError(
                f"data file {path}: '{name}' has per-event shape {ds.shape[1:]}, expected {shape}"
                + (" (φ rows, η columns, channels)" if name == "images" else "")
            )
        if np.dtype(ds.dtype).kind != np.dtype(dtype).kind:
            raise TfphysError(f"data file {path}: '{name}' has dtype {ds.dtype}, expected {np.dtype(dtype)}")
        if n is None:
            n = ds.shape[0]
        elif ds.shape[0] != n:
            raise TfphysError(
                f"data file {path}: '{name}' holds {ds.shape[0]} events but 'images' holds {n}"
            )
    if n == 0:
        raise TfphysError(f"data file {path} holds no events")
    labels = f["label"][:]
    bad = np.setdiff1d(np.unique(labels), list(CLASS_NAMES))
    if bad.size:
        raise TfphysError(f"data file {path}: unknown class label(s) {bad.tolist()}; expected 0, 1, 2")
    for name in ("mass", "n_tracks"):
        check_per_event(name, f[name][:], f"data file {path}")
    return n


def check_per_event(name: str, values: np.ndarray, where: str) -> None:
    """``mass`` and ``n_tracks``: finite and ≥ 0, else a TfphysError naming the first bad event."""
    values = np.asarray(values, np.float64)
    wrong = ~np.isfinite(values) | (values < 0)
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise TfphysError(f"{where}: '{name}' of event {i} is {values[i]:g}; expected a finite value ≥ 0")


def check_pixels(images: np.ndarray, path, first_event: int | np.ndarray) -> None:
    """The pixel contract every reader checks as it reads (training, evaluation, scoring, import):
    a TfphysError naming the file and the first event with a NaN/infinite or a negative pixel
    (deposits are energies ≥ 0 GeV). ``first_event``: the index of ``images[0]`` in the file,
    or the file index of every image."""
    flat = np.asarray(images).reshape(len(images), -1)
    for bad, what in ((~np.isfinite(flat).all(axis=1), "non-finite (NaN or inf) pixels"),
                      ((flat < 0).any(axis=1), "negative pixels; deposits are energies ≥ 0 GeV")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            event = first_event[i] if isinstance(first_event, np.ndarray) else first_event + i
            raise TfphysError(f"data file {path}: 'images' event {int(event)} has {what}")


def is_darkshowers_file(path) -> bool:
    """Whether ``path`` is an HDF5 file that says it is a dark-shower file, or says nothing and has
    ``images`` (files users write themselves to this contract; no validation)."""
    try:
        with h5py.File(path, "r") as f:
            fmt = f.attrs.get("format")
            return fmt == DARKSHOWERS_FORMAT or (fmt is None and "images" in f)
    except (OSError, ValueError):
        return False


def summary(path) -> str:
    """A human-readable summary of a dark-shower file: events per class and mass, n_tracks."""
    with open_darkshowers(path) as f:
        labels, masses, tracks = f["label"][:], f["mass"][:], f["n_tracks"][:]
        lines = [f"{path}: {len(labels)} events, format {f.attrs.get('format', '?')} "
                 f"v{f.attrs.get('version', '?')}, generator {f.attrs.get('generator', '?')}"]
    lines.append(f"{'class':>6} {'mass/GeV':>9} {'events':>8} {'<n_tracks>':>11}")
    for label in np.unique(labels):
        for mass in np.unique(masses[labels == label]):
            sel = (labels == label) & (masses == mass)
            lines.append(f"{CLASS_NAMES[int(label)]:>6} {mass:9g} {sel.sum():8d} {tracks[sel].mean():11.1f}")
    return "\n".join(lines)
