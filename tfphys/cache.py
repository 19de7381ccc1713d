"""Cached default datasets: one place, one naming and one write-then-rename for every family.

A model trained without ``--data`` reads a dataset generated once with a fixed seed and kept in
``$TFPHYS_CACHE`` (default ``~/.cache/tfphys``). The file is built under a temporary name and
renamed when complete, so a killed run never leaves a truncated file under the cached name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """Where default datasets are cached: ``$TFPHYS_CACHE`` or ``~/.cache/tfphys``."""
    return Path(os.environ.get("TFPHYS_CACHE", Path.home() / ".cache" / "tfphys"))


def cached(name: str, build: Callable[[Path], object]) -> Path:
    """``cache_dir() / name``, calling ``build(tmp_path)`` first if it does not exist yet."""
    path = cache_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".part{os.getpid()}")
        try:
            build(tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
