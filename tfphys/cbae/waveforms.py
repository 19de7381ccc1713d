"""The CBAE toy detector — Jesús-Valls, Lux & Sánchez, "Data-driven detector signal characterization
with constrained bottleneck autoencoders", §1.2 and §3.1 — and its HDF5 files.

The toy response (Eq. 1.2) maps physical parameters ``p = (θ, η)`` to a waveform::

    s(x) = f(θ, η)(x) = (1 + 0.5 θ) · L(7 | 1) + L(7 (−1 + η) | 1.2 + θ)

with ``L(μ | c)`` the Landau density of location μ and scale c (``scipy.stats.landau.pdf(x, μ, c)``),
evaluated at 1024 equidistant x in [−10, 10]. §3.1: θ, η ~ U(0, 1) independently; Gaussian noise of
σ = 0.05 is added to every sample *before* the normalisation ``s → (s + 0.1) / 0.8``. On that
normalised scale the maximum possible amplitude is 1 (the noise is 0.05 / 0.8 = 6.25 % of it, as in
the paper), and the paper's accuracy figures are fractions of it.

Waveform files (``format = "tfphys.waveforms"``, version 1)
------------------------------------------------------------
==============  ===========  ===============  ==============================================
dataset         dtype        shape            meaning
==============  ===========  ===============  ==============================================
``waveforms``   float32      (N, 1024)        the measured signal s, **normalised**
                                              ((s + offset) / scale), noise included
``params``      float32      (N, 2)           the physical parameters p; columns θ, η
``clean``       float32      (N, 1024)        the noiseless f(p), normalised the same way
                                              (kept for evaluation; a laboratory file may
                                              omit it — then only training works)
``x``           float32      (1024,)          the sample positions (time), ascending
==============  ===========  ===============  ==============================================

File attributes: ``format``, ``version``, ``generator``, ``offset`` and ``scale`` (of the
normalisation), ``noise_sigma`` (before normalisation), ``param_names`` (``"theta,eta"``) and
``seed`` (if generated). Axis order is (waveform, sample). ``clean`` is written with HDF5's shuffle
filter, which makes the smooth curves compress ~2×; the noisy ``waveforms`` do not compress and are
stored plain. :func:`read_waveforms` validates names, shapes, dtypes, lengths and finiteness with one
clear :class:`~tfphys.errors.TfphysError` per failure. No TensorFlow is imported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy.stats import landau
from tqdm.auto import tqdm

from tfphys.cache import cached
from tfphys.errors import TfphysError
from tfphys.hdf5 import ChunkWriter, open_validated

WAVEFORMS_FORMAT = "tfphys.waveforms"
WAVEFORMS_VERSION = 1
N_SAMPLES = 1024                 # §3.1: 2^10 equidistant times
X_RANGE = (-10.0, 10.0)          # §3.1: x ∈ [−10, 10]
PARAM_NAMES = ("theta", "eta")   # Eq. 1.2
N_PARAMS = len(PARAM_NAMES)
OFFSET, SCALE = 0.1, 0.8         # §3.1: s → (s + 0.1) / 0.8
NOISE_SIGMA = 0.05               # §3.1: before normalisation
CHUNK = 2048                     # waveforms generated and written at a time

#: dataset name -> (dtype, per-waveform shape); ``x`` is per file, not per waveform
WAVEFORM_DATASETS = {
    "waveforms": (np.float32, (N_SAMPLES,)),
    "params": (np.float32, (N_PARAMS,)),
    "clean": (np.float32, (N_SAMPLES,)),
}
OPTIONAL = ("clean",)


def sample_positions(n: int = N_SAMPLES) -> np.ndarray:
    """The ``n`` equidistant sample positions in [−10, 10] (both ends included), float64."""
    return np.linspace(*X_RANGE, n)


def response(params: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """Eq. 1.2, not normalised: ``(n, 2)`` parameters (θ, η) → ``(n, len(x))`` waveforms, float64.

    ``(1 + 0.5 θ) L(x; 7, 1) + L(x; 7(η − 1), 1.2 + θ)`` with ``L(x; μ, c) =
    scipy.stats.landau.pdf(x, loc=μ, scale=c)``.
    """
    p = np.asarray(params, np.float64)
    if p.ndim != 2 or p.shape[1] != N_PARAMS:
        raise TfphysError(f"parameters must have shape (n, {N_PARAMS}) (θ, η), got {p.shape}")
    x = sample_positions() if x is None else np.asarray(x, np.float64)
    theta, eta = p[:, :1], p[:, 1:]
    direct = (1.0 + 0.5 * theta) * landau.pdf(x, loc=7.0, scale=1.0)
    reflected = landau.pdf(x[None, :], loc=7.0 * (-1.0 + eta), scale=1.2 + theta)
    return direct + reflected


def normalise(s: np.ndarray, offset: float = OFFSET, scale: float = SCALE) -> np.ndarray:
    """§3.1: ``(s + offset) / scale``; with the paper's 0.1 and 0.8 f(p) lies in [0.125, 1)."""
    return (np.asarray(s) + offset) / scale


def denormalise(s: np.ndarray, offset: float = OFFSET, scale: float = SCALE) -> np.ndarray:
    """The inverse of :func:`normalise`."""
    return np.asarray(s) * scale - offset


def clean_waveforms(params: np.ndarray) -> np.ndarray:
    """Normalised noiseless f(p), ``(n, 1024)`` float32 — what a perfect generator returns."""
    return normalise(response(params)).astype(np.float32)


def simulate(n: int, *, seed: int | np.random.SeedSequence = 0,
             noise_sigma: float = NOISE_SIGMA) -> dict[str, np.ndarray]:
    """``n`` toy waveforms as in §3.1: θ, η ~ U(0, 1); noise σ before normalisation.

    Returns ``{"waveforms", "params", "clean"}`` (normalised float32 arrays). Same seed, same bytes.
    """
    if n <= 0:
        raise TfphysError(f"the number of waveforms must be positive, got {n}")
    if noise_sigma < 0:
        raise TfphysError(f"noise_sigma must be ≥ 0, got {noise_sigma}")
    rng = np.random.default_rng(seed)
    params = rng.uniform(0.0, 1.0, size=(n, N_PARAMS))
    f = response(params)
    noisy = f + rng.normal(0.0, noise_sigma, size=f.shape)
    return {
        "waveforms": normalise(noisy).astype(np.float32),
        "params": params.astype(np.float32),
        "clean": normalise(f).astype(np.float32),
    }


class WaveformWriter(ChunkWriter):
    """Append chunks of waveforms to a new waveform file (each chunk flushed to disk).

    ``with_clean=False`` writes a file without ``clean`` (e.g. laboratory data, where f is unknown).
    """

    def __init__(self, path: str | os.PathLike, *, generator: str, seed: int | None = None,
                 noise_sigma: float = NOISE_SIGMA, offset: float = OFFSET, scale: float = SCALE,
                 with_clean: bool = True):
        super().__init__(path, seed=seed, format=WAVEFORMS_FORMAT, version=WAVEFORMS_VERSION,
                         generator=generator, offset=offset, scale=scale, noise_sigma=noise_sigma,
                         param_names=",".join(PARAM_NAMES))
        self.names = [k for k in WAVEFORM_DATASETS if with_clean or k not in OPTIONAL]
        self._file["x"] = sample_positions().astype(np.float32)
        for name in self.names:
            dtype, shape = WAVEFORM_DATASETS[name]
            smooth = name == "clean"
            self._file.create_dataset(
                name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                chunks=(256, *shape), shuffle=smooth,
                compression="gzip" if smooth else None, compression_opts=1 if smooth else None,
            )
        self._file["waveforms"].attrs["axes"] = "waveform,sample"
        self._file["params"].attrs["columns"] = ",".join(PARAM_NAMES)

    length_key = "params"

    def append(self, chunk: Mapping[str, np.ndarray]) -> None:
        self._append({name: chunk[name] for name in self.names})


def generate(n: int, out: str | os.PathLike, *, seed: int = 0, noise_sigma: float = NOISE_SIGMA,
             progress: bool = True) -> int:
    """Generate ``n`` toy waveforms (§3.1) into a new file ``out``; what ``tfphys-data cbae`` runs.

    Each chunk of ``CHUNK`` waveforms draws from its own child of ``SeedSequence(seed)``, so a file is
    reproducible byte for byte from its seed.
    """
    if n <= 0:
        raise TfphysError(f"--n must be a positive number of waveforms, got {n}")
    sizes = [min(CHUNK, n - start) for start in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence(seed).spawn(len(sizes))
    with WaveformWriter(out, generator="toy", seed=seed, noise_sigma=noise_sigma) as writer, tqdm(
        total=n, unit="wf", desc="cbae toy", disable=None if progress else True,
    ) as bar:
        for size, child in zip(sizes, seeds):
            writer.append(simulate(size, seed=child, noise_sigma=noise_sigma))
            bar.update(size)
        return len(writer)


@dataclass(frozen=True)
class Waveforms:
    """The content of a waveform file (or of a slice of it), in memory."""

    waveforms: np.ndarray       # (n, 1024) float32, normalised, noisy
    params: np.ndarray          # (n, 2) float32, θ, η
    clean: np.ndarray | None    # (n, 1024) float32, normalised noiseless f(p), if the file has it
    x: np.ndarray               # (1024,) float32
    offset: float
    scale: float
    noise_sigma: float | None

    def __len__(self) -> int:
        return len(self.params)


def _open(path: Path) -> h5py.File:
    return open_validated(path)


def validate_header(f: h5py.File, path) -> int:
    """Check dataset names, dtypes, shapes and lengths; return the number of waveforms N."""
    fmt = f.attrs.get("format")
    if fmt is not None and fmt != WAVEFORMS_FORMAT:
        raise TfphysError(f"data file {path} is a {fmt!r} file, not a CBAE waveform file "
                          f"({WAVEFORMS_FORMAT!r}); generate one with `tfphys-data cbae`")
    required = [k for k in (*WAVEFORM_DATASETS, "x") if k not in OPTIONAL]
    missing = [k for k in required if k not in f]
    if missing:
        raise TfphysError(
            f"data file {path} lacks dataset(s) {', '.join(missing)}; a waveform file needs "
            f"{', '.join(required)} (see tfphys/cbae/waveforms.py)")
    n = None
    for name, (dtype, shape) in WAVEFORM_DATASETS.items():
        if name not in f:
            continue
        ds = f[name]
        if ds.shape[1:] != shape:
            extra = " (columns θ, η)" if name == "params" else " (1024 samples)"
            raise TfphysError(f"data file {path}: '{name}' has per-waveform shape {ds.shape[1:]}, "
                              f"expected {shape}{extra}")
        if np.dtype(ds.dtype).kind != np.dtype(dtype).kind:
            raise TfphysError(f"data file {path}: '{name}' has dtype {ds.dtype}, expected {np.dtype(dtype)}")
        if n is None:
            n = ds.shape[0]
        elif ds.shape[0] != n:
            raise TfphysError(f"data file {path}: '{name}' holds {ds.shape[0]} waveforms but "
                              f"'waveforms' holds {n}")
    if f["x"].shape != (N_SAMPLES,):
        raise TfphysError(f"data file {path}: 'x' has shape {f['x'].shape}, expected ({N_SAMPLES},)")
    if n == 0:
        raise TfphysError(f"data file {path} holds no waveforms")
    return n


def count(path) -> int:
    """The number of waveforms in a valid file (header read only)."""
    path = Path(path)
    with _open(path) as f:
        return validate_header(f, path)


def read_waveforms(path, start: int = 0, stop: int | None = None, *, clean: bool = True) -> Waveforms:
    """Read waveforms ``[start, stop)`` of a validated file into memory (finite values checked).

    ``clean=False`` skips the noiseless curves (training needs only waveforms and params).
    """
    path = Path(path)
    with _open(path) as f:
        n = validate_header(f, path)
        stop = n if stop is None else min(stop, n)
        if not 0 <= start < stop:
            raise TfphysError(f"data file {path}: empty selection [{start}, {stop}) of {n} waveforms")
        out = {k: f[k][start:stop] for k in ("waveforms", "params")}
        if clean and "clean" in f:
            out["clean"] = f["clean"][start:stop]
        for name, values in out.items():
            bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
            if bad.any():
                raise TfphysError(f"data file {path}: waveform {start + int(np.flatnonzero(bad)[0])} "
                                  f"has non-finite (NaN or inf) values in '{name}'")
        attrs = f.attrs
        return Waveforms(
            waveforms=out["waveforms"].astype(np.float32), params=out["params"].astype(np.float32),
            clean=out["clean"].astype(np.float32) if "clean" in out else None,
            x=f["x"][:].astype(np.float32), offset=float(attrs.get("offset", OFFSET)),
            scale=float(attrs.get("scale", SCALE)),
            noise_sigma=float(attrs["noise_sigma"]) if "noise_sigma" in attrs else None,
        )


def is_waveform_file(path) -> bool:
    """Whether ``path`` is an HDF5 file that says it is a waveform file (no validation)."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == WAVEFORMS_FORMAT
    except (OSError, ValueError):
        return False


def summary(path) -> str:
    """A one-paragraph summary of a waveform file (for ``tfphys-data cbae`` and the CLI)."""
    path = Path(path)
    with _open(path) as f:
        n = validate_header(f, path)
        p = f["params"][:]
        return (f"{path}: {n} waveforms × {N_SAMPLES} samples, format {f.attrs.get('format', '?')} "
                f"v{f.attrs.get('version', '?')}, generator {f.attrs.get('generator', '?')}, "
                f"noise σ {f.attrs.get('noise_sigma', '?')}, θ ∈ [{p[:, 0].min():.3f}, {p[:, 0].max():.3f}], "
                f"η ∈ [{p[:, 1].min():.3f}, {p[:, 1].max():.3f}], clean f(p) {'stored' if 'clean' in f else 'absent'}")


def default_dataset(n: int, seed: int, progress: bool = True) -> Path:
    """Path of a cached generated waveform file (:func:`tfphys.cache.cached`), generating it first if needed."""
    return cached(f"cbae-waveforms-n{n}-seed{seed}-v{WAVEFORMS_VERSION}.h5",
                  lambda tmp: generate(n, tmp, seed=seed, progress=progress))
