"""Import dark-shower images made elsewhere (``tfphys-data import``).

Users with their own images — from their own Delphes chain, or the CoDAE authors' files on request —
bring them as an HDF5 file (``.h5``/``.hdf5``) or a NumPy archive (``.npz``) holding

==============  ==========================  ==================================================
array           shape                       content
==============  ==========================  ==================================================
``images``      (N, 360, 286, 3)            E_T / p_T deposits in GeV, φ rows × η columns ×
                                            (tracker, ECAL, HCAL) — the paper's layout; with
                                            ``transpose=True`` (N, 286, 360, 3), η before φ.
                                            Any real dtype; stored as float32.
``label``       (N,)                        0 QCD, 1 SUEP, 2 SVJ (integers; or ``label=`` for
                                            all events when the file has none).
``mass``        (N,)                        mediator mass in GeV (optional: ``mass=`` for all
                                            events; QCD-only files default to 0).
``n_tracks``    (N,)                        reconstructed tracks (optional, see below).
==============  ==========================  ==================================================

Array names are configurable (``keys=``). Every check raises a one-line
:class:`~tfphys.errors.TfphysError` naming the file, the array and, for pixel values, the first bad
event: wrong shape (including a hint when the axes look swapped), non-real dtype, no events,
NaN/inf or negative pixels, labels outside {0, 1, 2} or non-integer, lengths that disagree,
signal events without a mass.

Without ``n_tracks`` the number of non-zero tracker pixels is stored instead — a lower bound of
nTracks, since tracks can share a pixel — and the file attribute ``n_tracks_source`` says so.

The output is written under a temporary name and renamed when complete (:mod:`tfphys.atomic`), so a
failed import leaves nothing.
Without ``out`` the file is only checked; a file already in the tfphys layout
(:mod:`tfphys.darkshowers.format`) is reported usable in place (``--data FILE``).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from tfphys.darkshowers import format as formats
from tfphys.errors import TfphysError

KEYS = ("images", "label", "mass", "n_tracks")
SWAPPED_SHAPE = (formats.IMAGE_SHAPE[1], formats.IMAGE_SHAPE[0], formats.IMAGE_SHAPE[2])  # 286, 360, 3
CHUNK_EVENTS = 256


def _load_npz_array(npz, name: str, path: Path) -> np.ndarray:
    """One array of an .npz archive; an object (pickled) array is refused, never unpickled."""
    try:
        return npz[name]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise TfphysError(f"{path}: '{name}' is an object array (pickled Python objects, which are "
                              "never loaded); save numbers, e.g. np.asarray(images, np.float32)") from None
        raise TfphysError(f"{path}: '{name}' cannot be read ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise TfphysError(f"{path}: '{name}' cannot be read (truncated or corrupt archive? {err})") from None


class _Source:
    """Named arrays of an HDF5 file (read lazily, slice by slice) or of an NPZ archive."""

    def __init__(self, path: Path):
        self.path = path
        self._h5 = None
        if not path.exists():
            raise TfphysError(f"{path} does not exist")
        if not path.is_file() or path.stat().st_size == 0:
            raise TfphysError(f"{path} is empty or not a file")
        if h5py.is_hdf5(path):
            self._h5 = h5py.File(path, "r")
            self.arrays = {name: obj for name, obj in self._h5.items() if isinstance(obj, h5py.Dataset)}
        else:
            try:
                npz = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
                raise TfphysError(f"{path} is neither an HDF5 file nor a NumPy .npz archive ({err})") from None
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise TfphysError(f"{path} is a single .npy array; expected an HDF5 file or an .npz "
                                  "archive with named arrays (images, label, ...)")
            with npz:
                self.arrays = {name: _load_npz_array(npz, name, path) for name in npz.files}
        self.is_hdf5 = self._h5 is not None

    def get(self, key: str, required: bool):
        if key in self.arrays:
            return self.arrays[key]
        if required:
            held = ", ".join(sorted(self.arrays)) or "nothing"
            raise TfphysError(f"{self.path} has no '{key}' array; it holds {held} "
                              "(name yours with --images-key, --label-key, --mass-key, --n-tracks-key)")
        return None

    def close(self):
        if self._h5 is not None:
            self._h5.close()


def _per_event(src: _Source, key: str, values, n: int, *, integer: bool) -> np.ndarray:
    values = np.asarray(values[()] if isinstance(values, h5py.Dataset) else values)
    if values.shape != (n,):
        raise TfphysError(f"{src.path}: '{key}' has shape {values.shape}; expected ({n},), one value per image")
    if values.dtype.kind not in "biuf":
        raise TfphysError(f"{src.path}: '{key}' has dtype {values.dtype}; expected numbers")
    if not np.isfinite(values.astype(np.float64)).all():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise TfphysError(f"{src.path}: '{key}' of event {i} is {values[i]:g}; expected a finite value")
    if integer and not np.array_equal(values, np.round(values)):
        i = int(np.flatnonzero(values != np.round(values))[0])
        raise TfphysError(f"{src.path}: '{key}' of event {i} is {values[i]}; expected an integer")
    return values


def check_arrays(src: _Source, *, transpose: bool = False, label: int | None = None,
                 mass: float | None = None, keys: dict | None = None) -> dict:
    """Validate a source's per-event arrays and return (images array-like, label, mass, n_tracks,
    n_tracks_source); pixel values are checked while copying (:func:`_image_chunks`)."""
    keys = {**dict(zip(KEYS, KEYS)), **(keys or {})}
    images = src.get(keys["images"], required=True)
    expected = SWAPPED_SHAPE if transpose else formats.IMAGE_SHAPE
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        hint = ""
        if not transpose and tuple(images.shape[1:]) == SWAPPED_SHAPE:
            hint = "; it looks like η × φ (286 × 360): add --transpose"
        elif transpose and tuple(images.shape[1:]) == formats.IMAGE_SHAPE:
            hint = "; it is already φ × η (360 × 286): drop --transpose"
        raise TfphysError(f"{src.path}: '{keys['images']}' has shape {tuple(images.shape)}; expected "
                          f"(N, {', '.join(map(str, expected))}){hint}")
    if np.dtype(images.dtype).kind not in "iuf":
        raise TfphysError(f"{src.path}: '{keys['images']}' has dtype {images.dtype}; expected real numbers "
                          "(float or integer energies in GeV)")
    n = images.shape[0]
    if n == 0:
        raise TfphysError(f"{src.path}: '{keys['images']}' holds no events")

    stored_label = src.get(keys["label"], required=False)
    if stored_label is not None and label is not None:
        raise TfphysError(f"{src.path} has its own '{keys['label']}' array; drop --label")
    if stored_label is None and label is None:
        raise TfphysError(f"{src.path} has no '{keys['label']}' array: give the class of every event "
                          "with --label 0|1|2 (QCD, SUEP, SVJ)")
    if stored_label is None:
        labels = np.full(n, label)
    else:
        labels = _per_event(src, keys["label"], stored_label, n, integer=True)
    bad = np.setdiff1d(np.unique(labels), list(formats.CLASS_NAMES))
    if bad.size:
        raise TfphysError(f"{src.path}: unknown class label(s) {bad.tolist()}; expected 0 (QCD), "
                          "1 (SUEP), 2 (SVJ)")

    stored_mass = src.get(keys["mass"], required=False)
    if stored_mass is not None and mass is not None:
        raise TfphysError(f"{src.path} has its own '{keys['mass']}' array; drop --mass")
    if stored_mass is not None:
        masses = _per_event(src, keys["mass"], stored_mass, n, integer=False)
    elif mass is not None:
        masses = np.full(n, float(mass))
    elif (labels == 0).all():
        masses = np.zeros(n)
    else:
        raise TfphysError(f"{src.path} has signal events but no '{keys['mass']}' array: give the "
                          "mediator mass in GeV with --mass (m_H for SUEP, m_Z' for SVJ)")
    formats.check_per_event(keys["mass"], masses, str(src.path))

    stored_tracks = src.get(keys["n_tracks"], required=False)
    tracks = None
    if stored_tracks is not None:
        tracks = _per_event(src, keys["n_tracks"], stored_tracks, n, integer=True)
        formats.check_per_event(keys["n_tracks"], tracks, str(src.path))
    return {"images": images, "label": labels, "mass": masses, "n_tracks": tracks,
            "n_tracks_source": keys["n_tracks"] if tracks is not None else "tracker pixels"}


def _image_chunks(src: _Source, checked: dict, transpose: bool, chunk_events: int, progress: bool):
    """Yield float32 event chunks in the tfphys layout, checking finiteness and sign."""
    images, n = checked["images"], len(checked["label"])
    with tqdm(total=n, unit="ev", desc="import", disable=None if progress else True) as bar:
        for start in range(0, n, chunk_events):
            block = np.asarray(images[start:start + chunk_events], dtype=np.float32)
            if transpose:
                block = block.swapaxes(1, 2)
            formats.check_pixels(block, src.path, start)
            stop = start + len(block)
            tracks = checked["n_tracks"]
            yield {"images": np.ascontiguousarray(block), "label": checked["label"][start:stop],
                   "mass": checked["mass"][start:stop],
                   "n_tracks": (tracks[start:stop] if tracks is not None
                                else (block[..., 0] > 0).sum(axis=(1, 2)))}
            bar.update(len(block))


def in_place(path: str | os.PathLike) -> int:
    """Events of a file already in the tfphys layout, after checking every pixel; else TfphysError."""
    with formats.open_darkshowers(path) as f:
        n = f["label"].shape[0]
        for start in range(0, n, CHUNK_EVENTS):
            formats.check_pixels(f["images"][start:start + CHUNK_EVENTS], path, start)
    return n


def import_images(path: str | os.PathLike, out: str | os.PathLike | None = None, *,
                  transpose: bool = False, label: int | None = None, mass: float | None = None,
                  keys: dict | None = None, progress: bool = True,
                  chunk_events: int = CHUNK_EVENTS) -> dict:
    """Check ``path`` and, if ``out`` is given, write it in the tfphys format (module docstring).

    Returns ``{"events": N, "out": out or None, "in_place": bool, "n_tracks_source": str}``;
    ``in_place`` is True when ``path`` already is a valid tfphys file (nothing needs writing).
    """
    path = Path(path)
    if out is None and path.is_file() and h5py.is_hdf5(path):
        try:
            n = in_place(path)
        except TfphysError:
            pass  # not the tfphys layout: check it as a foreign file below
        else:
            if transpose:
                raise TfphysError(f"{path} already is a tfphys file (φ × η); drop --transpose")
            return {"events": n, "out": None, "in_place": True, "n_tracks_source": "n_tracks"}
    src = _Source(path)
    try:
        checked = check_arrays(src, transpose=transpose, label=label, mass=mass, keys=keys)
        chunks = _image_chunks(src, checked, transpose, chunk_events, progress)
        if out is None:
            n = sum(len(c["label"]) for c in chunks)
        else:
            out = Path(out)
            if out.resolve() == path.resolve():
                raise TfphysError(f"--out {out} is the input file; choose another name")
            with formats.DarkShowerWriter(out, generator=f"import:{path.name}") as writer:  # temp + rename
                writer._file.attrs["n_tracks_source"] = checked["n_tracks_source"]
                for chunk in chunks:
                    writer.append(chunk)
                n = len(writer)
    finally:
        src.close()
    return {"events": n, "out": out, "in_place": False, "n_tracks_source": checked["n_tracks_source"]}


def main(args) -> str:
    """``tfphys-data import`` (see :func:`tfphys.cli.data_parser`); returns the message to print."""
    keys = {key: getattr(args, f"{key}_key") for key in KEYS}
    result = import_images(args.file, args.out, transpose=args.transpose, label=args.label,
                           mass=args.mass, keys=keys)
    n = result["events"]
    if result["in_place"]:
        return (f"{args.file}: {n} events, already in the tfphys format: use it in place "
                f"(e.g. tfphys-train codae --data {args.file})")
    note = ("" if result["n_tracks_source"] != "tracker pixels" else
            "\nnote: no n_tracks array; stored the number of non-zero tracker pixels (a lower bound)")
    if result["out"] is None:
        return f"{args.file}: {n} events pass the checks; write them with --out FILE.h5{note}"
    return f"wrote {n} events to {result['out']}{note}"
