"""The generic HDF5 contract every family's files follow (h5py).

A data file is written chunk by chunk through a :class:`ChunkWriter` (resizable per-event
datasets, flushed after every chunk, under a temporary name renamed when complete) and read
through :func:`open_validated` (one clear :class:`~tfphys.errors.TfphysError` for a missing,
empty, non-HDF5 or invalid file). The families define their layouts on top of these two:
``tfphys.darkshowers.format``, ``tfphys.cbae.waveforms``, ``tfphys.albus.storage``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from tfphys.atomic import atomic_path, fault_point
from tfphys.errors import TfphysError


class ChunkWriter:
    """A new HDF5 file of resizable per-event datasets, appended to chunk by chunk.

    The base of the dark-shower, waveform and ALBUS writers: ``__init__`` creates the file with its
    header attributes (``seed`` when given); the subclass creates its datasets; :meth:`_append`
    checks every column against its dataset's per-event shape, grows all of them together and
    flushes. ``length_key`` names the dataset that counts the events.

    The file is written under a temporary name (:class:`tfphys.atomic.atomic_path`) and renamed onto
    ``path`` when the writer is closed without an error, so ``path`` never holds a half-written
    file. ``keep_partial=True``: the temporary is ``PATH.part`` and survives an error or a kill with
    every finished chunk (``len(writer)`` events, the same in every dataset), for a writer that
    resumes (:meth:`reopen`).
    """

    length_key: str

    def __init__(self, path: str | os.PathLike, *, seed: int | None = None, keep_partial: bool = False,
                 **attrs):
        self._start(path, "w", keep_partial)
        self._file.attrs.update(attrs)
        if seed is not None:
            self._file.attrs["seed"] = seed

    def _start(self, path, mode: str, keep_partial: bool) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise TfphysError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self._atomic = atomic_path(self.path, keep_partial=keep_partial)
        self.partial = self._atomic.open()
        try:
            self._file = h5py.File(self.partial, mode)
        except BaseException:
            self._atomic.abort()
            raise

    @classmethod
    def reopen(cls, path: str | os.PathLike, kept: int):
        """Continue the partial file ``PATH.part`` of an interrupted writer, keeping its first
        ``kept`` events (the finished chunks); closing it renames it onto ``path``."""
        self = cls.__new__(cls)
        self._start(path, "a", keep_partial=True)
        for name, ds in self._file.items():
            if isinstance(ds, h5py.Dataset) and ds.maxshape[:1] == (None,):
                ds.resize(kept, axis=0)
        self._file.flush()
        return self

    def __len__(self) -> int:
        return self._file[self.length_key].shape[0]

    def _append(self, columns: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(columns.values())))
        for name, values in columns.items():
            shape = (n, *self._file[name].shape[1:])
            if np.shape(values) != shape:
                raise TfphysError(f"{name}: expected shape {shape}, got {np.shape(values)}")
        start = len(self)
        for name, values in columns.items():
            ds = self._file[name]
            ds.resize(start + n, axis=0)
            fault_point("mid-chunk")
            ds[start:] = np.asarray(values, dtype=ds.dtype)
        self._file.flush()
        fault_point("after-chunk")

    def close(self, failed: bool = False) -> None:
        """Close the file: rename it onto ``path`` (or, ``failed``, leave ``path`` as it was)."""
        try:
            if self._file.id.valid:
                self._file.close()
        except Exception:
            self._atomic.abort()
            if failed:  # e.g. a full disk: closing fails too; the error being handled is the one to report
                return
            raise
        if failed:
            self._atomic.abort()
        else:
            self._atomic.commit()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        self.close(failed=kind is not None)


def open_validated(path: str | os.PathLike, validate=None) -> h5py.File:
    """Open an HDF5 data file read-only, with one clear error for a missing, empty or non-HDF5
    file; then ``validate(f, path)`` (closing the file if it raises). The caller closes it.
    Every family's reader opens its files through this."""
    path = Path(path)
    if not path.exists():
        raise TfphysError(f"data file {path} does not exist")
    if not path.is_file() or path.stat().st_size == 0:
        raise TfphysError(f"data file {path} is empty or not a file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise TfphysError(f"data file {path} is not a readable HDF5 file ({err})") from None
    if validate is not None:
        try:
            validate(f, path)
        except TfphysError:
            f.close()
            raise
    return f
