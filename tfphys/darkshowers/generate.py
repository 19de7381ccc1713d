"""Dark-shower collision images: generators and the files they write.

``generate`` is what ``tfphys-data darkshowers`` (alias ``generate``) runs: it draws events chunk by chunk from a
generator (``"toy"``, the built-in numpy simulator of :mod:`.toy`, is the default; ``"pythia"`` is
Pythia 8 imaged by the same detector, :mod:`.pythia`, extra ``tfphys[pythia]``) and appends them
to a :class:`~tfphys.darkshowers.format.DarkShowerWriter`. Each chunk gets its own child of
``numpy.random.SeedSequence(seed)``, so a file is reproducible byte for byte from its seed.
No TensorFlow is imported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from tfphys.cache import cached
from tfphys.darkshowers import format as formats
from tfphys.errors import TfphysError

GENERATORS = ("toy", "pythia")
CHUNK_EVENTS = 128  # 128 × 1.2 MB of dense images in memory at a time


def components(process: str, mass_gev: float | None) -> list[tuple[str, float | None]]:
    """The (process, mass) pieces of a request; ``"all"`` is QCD plus every signal mass point."""
    from tfphys.darkshowers import toy

    if process == "all":
        if mass_gev is not None:
            raise TfphysError("--mass cannot be combined with --process all")
        return [("qcd", None)] + [(p, m) for p in ("suep", "svj") for m in toy.MASSES_GEV[p]]
    if process not in toy.PROCESSES:
        raise TfphysError(f"unknown process {process!r}; expected one of {', '.join(toy.PROCESSES)}, all")
    if mass_gev is not None and mass_gev not in toy.MASSES_GEV[process]:
        allowed = ", ".join(f"{m:g}" for m in toy.MASSES_GEV[process])
        raise TfphysError(f"mass {mass_gev:g} GeV is not a {process} mass point; expected one of {allowed}")
    return [(process, None if process == "qcd" else mass_gev)]


def generate(process: str, n: int, out: str | os.PathLike, *, mass_gev: float | None = None,
             seed: int = 0, generator: str = "toy", progress: bool = True, workers: int = 1,
             resume: bool = False, **physics) -> int:
    """Generate ``n`` events per (process, mass) component into a new HDF5 file ``out``.

    ``process="all"`` writes a labelled test set: ``n`` QCD events and ``n`` events at every SUEP
    and SVJ mass point. A signal process without ``mass_gev`` draws the mass point per event.
    Returns the number of events written. Chunks are flushed as they are written, so an
    interrupted run leaves a valid file with every finished chunk.

    ``generator="pythia"`` runs :func:`.pythia.generate` (``workers`` processes, ``resume``, physics
    keywords such as ``r_inv=0.5``); the toy generator takes none of these.
    """
    if generator not in GENERATORS:
        raise TfphysError(f"unknown generator {generator!r}; expected one of {', '.join(GENERATORS)}")
    if generator == "pythia":
        from tfphys.darkshowers import pythia

        return pythia.generate(process, n, out, mass_gev=mass_gev, seed=seed, workers=workers,
                               resume=resume, progress=progress, **physics)
    given = sorted(k for k, v in physics.items() if v not in (None, ()))
    if given or workers != 1 or resume:
        options = given + (["workers"] if workers != 1 else []) + (["resume"] if resume else [])
        raise TfphysError(f"{', '.join(options)}: only for --generator pythia")
    if n <= 0:
        raise TfphysError(f"--n must be a positive number of events, got {n}")
    from tfphys.darkshowers import toy

    pieces = components(process, mass_gev)
    sizes = [min(CHUNK_EVENTS, n - start) for start in range(0, n, CHUNK_EVENTS)]
    seeds = np.random.SeedSequence(seed).spawn(len(pieces) * len(sizes))
    with formats.DarkShowerWriter(out, generator=generator, seed=seed) as writer, tqdm(
        total=n * len(pieces), unit="ev", desc=f"{generator}:{process}",
        disable=None if progress else True,  # None: shown on a terminal only
    ) as bar:
        for k, (proc, mass) in enumerate(pieces):
            for j, size in enumerate(sizes):
                writer.append(toy.simulate(proc, size, mass_gev=mass, seed=seeds[k * len(sizes) + j]))
                bar.update(size)
        return len(writer)


def default_dataset(process: str, n: int, seed: int, progress: bool = True) -> Path:
    """Path of a cached generated dataset (:func:`tfphys.cache.cached`), generating it first if needed."""
    return cached(f"darkshowers-{process}-n{n}-seed{seed}-v{formats.DARKSHOWERS_VERSION}.h5",
                  lambda tmp: generate(process, n, tmp, seed=seed, progress=progress))
