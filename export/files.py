"""Writing the export's files so that no reader ever sees half of one.

Every file ``tfphys-export`` writes (the ``.tflite`` / ``.onnx`` models, ``report.json``, ``report.md``,
the CMSSW snippet) goes through :mod:`tfphys.atomic` (a temporary name in the same directory, fsynced
and renamed onto the final name), ``latency.png`` through :func:`tfphys.reports.savefig`: a kill
mid-write leaves at most a hidden temporary, never a truncated file under the final name. A Triton
model directory is built beside its final place and swapped in whole (:func:`replace_dir`:
``os.replace`` cannot replace a non-empty directory). Two exports into the same directory at once
take turns (:func:`locked`, an ``fcntl.flock`` on ``DIR/.export.lock``), so their reports cannot
interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from tfphys.atomic import write_bytes, write_text

__all__ = ["LOCK", "locked", "replace_dir", "sha256", "write_bytes", "write_text"]

LOCK = ".export.lock"


def replace_dir(path, files: dict[str, bytes]) -> None:
    """Make directory ``path`` hold exactly ``files`` (relative name → content): they are written into
    a new directory beside it, which then takes its place. A reader sees the old directory or the new
    one whole; between the two renames, briefly, none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new, old = (path.with_name(f".{path.name}.{os.getpid()}.{kind}") for kind in ("tmp", "old"))
    for tmp in (new, old):
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, data in files.items():
            (new / name).parent.mkdir(parents=True, exist_ok=True)
            (new / name).write_bytes(data)
        if path.exists():
            os.replace(path, old)
        os.replace(new, path)
    finally:
        shutil.rmtree(new, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def locked(directory) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory/.export.lock`` (waiting, with one line on stderr,
    while another export holds it). The lock file stays: removing it would let a third export lock
    a different inode than the second."""
    lock = Path(directory) / LOCK
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"tfphys-export: waiting for another export into {directory} to finish", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
