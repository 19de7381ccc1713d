"""Cached default datasets: one place, one naming and one write-then-rename for every family.

A model trained without ``--data`` reads a dataset generated once with a fixed seed and kept in
``$TFPHYS_CACHE`` (default ``~/.cache/tfphys``). The file is built under a temporary name unique to
the process and renamed when complete (:class:`tfphys.atomic.atomic_path`), so a killed run never
leaves a truncated file under the cached name. Processes filling the same entry at once queue on a
lock file (``fcntl.flock``, released by the kernel when a holder dies): the first builds it, the
others find it built. The entries are seeded, so any builder's file is the same file.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tfphys.atomic import atomic_path


def cache_dir() -> Path:
    """Where default datasets are cached: ``$TFPHYS_CACHE`` or ``~/.cache/tfphys``."""
    return Path(os.environ.get("TFPHYS_CACHE", Path.home() / ".cache" / "tfphys"))


def cached(name: str, build: Callable[[Path], object]) -> Path:
    """``cache_dir() / name``, calling ``build(tmp_path)`` first if it does not exist yet."""
    path = cache_dir() / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process filling this entry: wait for it
        if not path.exists():  # recheck: it may have just been built
            # A line before and after: on a log (no terminal, no tqdm bar) the first use is
            # otherwise a silent wait of tens of seconds.
            print(f"tfphys: generating the default dataset {path} (first use, cached) …",
                  file=sys.stderr, flush=True)
            start = time.perf_counter()
            with atomic_path(path) as tmp:
                build(tmp)
            print(f"tfphys: generated {path.name} in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr, flush=True)
    return path
