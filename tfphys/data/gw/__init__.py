"""Gravitational-wave burst data for ALBUS (Boudart & Fays, arXiv 2201.08727).

``noise`` (H1/L1-like coloured noise, glitches, time slides) → ``coherence`` (166 × 1025 Welch
coherence maps) → ``injections`` (chirps set by visibility, target maps) → ``storage`` (cubehelix
RGB in HDF5, the multiprocess dataset builder behind ``tfphys-data albus``). No TensorFlow here.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfphys.data.darkshowers import cache_dir
from tfphys.data.gw import storage


def default_dataset(n_background: int, n_per_level: int, seed: int, *, n_glitch: int = 0,
                    psd: str = "auto", progress: bool = True, workers: int | None = None) -> Path:
    """Path of a cached ALBUS dataset, building it first if needed.

    Same cache as the dark-shower default datasets (``$TFPHYS_CACHE`` or ``~/.cache/tfphys``,
    written under a temporary name and renamed when complete). The PSD actually used is part of
    the name, so files made with and without lalsuite never stand in for each other.
    """
    from tfphys.data.gw.noise import resolve_psd_model

    psd = resolve_psd_model(psd)
    name = (f"albus-bg{n_background}-inj{n_per_level}-gl{n_glitch}-{psd}-seed{seed}"
            f"-v{storage.ALBUS_VERSION}.h5")
    path = cache_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".part{os.getpid()}")
        try:
            storage.build(tmp, n_background=n_background, n_per_level=n_per_level, n_glitch=n_glitch,
                          seed=seed, psd=psd, progress=progress, workers=workers)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    return path
