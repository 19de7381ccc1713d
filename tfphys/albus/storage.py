"""ALBUS map files: cubehelix 8-bit RGB encoding, the HDF5 contract, and the dataset builder.

RGB storage (§I.A)
------------------
A raw coherence map (Eq. 1) is normalised along time per frequency bin (every column sums to 1),
multiplied by ``n_time`` (so a column's mean is 1 whatever the map size) and divided by
``VALUE_MAX`` = 20, then clipped to [0, 1]: ``value = clip(n_time · C̃ / 20, 0, 1)``. A fixed
range (rather than each map's own min–max) keeps the colour of a pixel comparable between maps;
pure noise sits around 0.05 and a fully coherent pixel of a 166-stride map around 0.5–1. The
value is drawn through matplotlib's 256-colour ``cubehelix`` colormap exactly as ``Colormap``
does — colour index ``k = min(⌊256 · value⌋, 255)`` — and stored as 8-bit RGB. Decoding maps each
colour back to its index (the 256 cubehelix colours are distinct) and returns the bin centre
``(k + ½)/256``, so the round-trip error is at most half a bin, ``1/2⁹`` ≈ 0.2 % (the paper's
"(1/2⁸)/2"). The network sees the RGB image scaled to [0, 1]; figures show its red channel.

HDF5 layout (``format = "tfphys.albus"``, version 1)
-----------------------------------------------------
=======================  ========  ====================  ===========================================
dataset                  dtype     shape                 meaning
=======================  ========  ====================  ===========================================
``maps``                 uint8     (N, T, F, 3)          cubehelix RGB; axes map, time (6 s strides),
                                                         frequency (2 Hz bins, 0…2048 Hz), channel
``targets``              float16   (N, T, F)             §II.B target in [0, 1] (all 0: background)
``kind``                 int8      (N,)                  0 background (time slide), 1 chirp, 2 glitch
``visibility``           float32   (N,)                  requested level (0 if none)
``visibility_measured``  float32   (N,)                  Eq. (4) of the stored injection
``hrss``                 float32   (N,)                  Eq. (3), strain·√s (0 if none)
``amplitude``            float32   (N,)                  strain amplitude of the unit chirp
``duration_s``           float32   (N,)                  chirp duration (glitch: its length)
``delay_s``              float32   (N,)                  chirp start (glitch: its time) in the map
``f_start_hz``           float32   (N,)                  chirp start frequency
``f_end_hz``             float32   (N,)                  chirp end frequency
``method``               int8      (N,)                  index in ``METHODS`` attribute (−1 none)
``beta``                 float32   (N,)                  Kaiser β
``rising``               int8      (N,)                  1 first half (rising), 0 falling, −1 none
``slide_s``              float32   (N,)                  L1 time slide of a background map
=======================  ========  ====================  ===========================================

T × F is 166 × 1025 for the paper's geometry. File attributes: ``format``, ``version``, ``psd``
(``O3`` or ``analytic``), ``sample_rate_hz``, ``duration_s``, ``stride_s``, ``fftlength_s``,
``overlap_s``, ``colormap``, ``value_max``, ``methods``, ``seed``. Maps and targets are chunked one
map per chunk, gzip level 1.

The builder (:func:`build`) runs one task per map (a background task makes a block of time-slide
maps) over a ``spawn`` process pool, in a fixed order with one ``SeedSequence`` child per task:
the same seed gives the same file, whatever the number of workers.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from tfphys.albus import coherence, injections, noise
from tfphys.albus.coherence import PAPER, MapGeometry
from tfphys.cache import cached
from tfphys.errors import TfphysError
from tfphys.hdf5 import ChunkWriter, open_validated

ALBUS_FORMAT = "tfphys.albus"
ALBUS_VERSION = 1
COLORMAP = "cubehelix"
VALUE_MAX = 20.0
KINDS = {0: "background", 1: "chirp", 2: "glitch"}
SLIDE_WINDOWS = 3  # a background task slides 3 × 1000 s streams: 3 · 2 = 6 maps per noise draw
PARAMS = {  # name -> dtype, empty value
    "visibility": (np.float32, 0.0), "visibility_measured": (np.float32, 0.0),
    "hrss": (np.float32, 0.0), "amplitude": (np.float32, 0.0), "duration_s": (np.float32, 0.0),
    "delay_s": (np.float32, 0.0), "f_start_hz": (np.float32, 0.0), "f_end_hz": (np.float32, 0.0),
    "method": (np.int8, -1), "beta": (np.float32, 0.0), "rising": (np.int8, -1),
    "slide_s": (np.float32, 0.0),
}


# ------------------------------------------------------------------------------ RGB encoding
@functools.lru_cache(maxsize=1)
def _lut() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import matplotlib

    cmap = matplotlib.colormaps[COLORMAP].resampled(256)
    rgb = cmap(np.arange(256), bytes=True)[:, :3].astype(np.uint8)
    keys = (rgb[:, 0].astype(np.int32) << 16) | (rgb[:, 1].astype(np.int32) << 8) | rgb[:, 2]
    order = np.argsort(keys)
    if len(np.unique(keys)) != 256:
        raise RuntimeError("cubehelix colours are not distinct: RGB maps could not be decoded")
    return rgb, keys[order], order


def encode_rgb(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) → cubehelix uint8 RGB, shape ``(*values.shape, 3)``."""
    rgb, _, _ = _lut()
    index = np.clip((np.asarray(values, np.float32) * 256).astype(np.int32), 0, 255)
    return rgb[index]


def decode_rgb(rgb: np.ndarray) -> np.ndarray:
    """Cubehelix uint8 RGB → values at the colour bins' centres ``(k + ½)/256`` (error ≤ 1/2⁹)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise TfphysError(f"expected uint8 RGB (..., 3), got {rgb.dtype} {rgb.shape}")
    _, sorted_keys, order = _lut()
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, 255)
    if not np.array_equal(sorted_keys[pos], keys):
        raise TfphysError("RGB values that are not cubehelix colours cannot be decoded")
    return ((order[pos] + 0.5) / 256).astype(np.float32)


def map_values(raw: np.ndarray) -> np.ndarray:
    """Raw coherence (T, F) → the stored value ``clip(T · C̃ / VALUE_MAX, 0, 1)`` (module docstring)."""
    return np.clip(coherence.normalise_time(raw) * (raw.shape[-2] / VALUE_MAX), 0.0, 1.0)


def encode_map(raw: np.ndarray) -> np.ndarray:
    """Raw coherence map (T, F) → stored uint8 RGB map (T, F, 3)."""
    return encode_rgb(map_values(raw))


# ------------------------------------------------------------------------------ map generation
def _geometry_attrs(g: MapGeometry) -> dict:
    return dict(sample_rate_hz=g.sample_rate_hz, duration_s=g.duration_s, stride_s=g.stride_s,
                fftlength_s=g.fftlength_s, overlap_s=g.overlap_s)


def _record(kind, raw, target, **params) -> dict:
    out = {"maps": encode_map(raw), "targets": target.astype(np.float16), "kind": kind}
    for name, (dtype, empty) in PARAMS.items():
        out[name] = params.get(name, empty)
    return out


def background_maps(seed, n: int, geometry: MapGeometry = PAPER, psd: str = "auto") -> list[dict]:
    """``n`` (≤ 6) background maps from time slides of one 3 × 1000 s H1/L1 noise draw (§I.A)."""
    g = geometry
    rng = np.random.default_rng(seed)
    h1, l1 = noise.detector_noise(SLIDE_WINDOWS * g.duration_s, rng, sample_rate_hz=g.sample_rate_hz,
                                  model=psd)
    out = []
    for x, y, shift in noise.time_slide_pairs(h1, l1, g.duration_s, min_shift_s=min(500.0, g.duration_s),
                                              sample_rate_hz=g.sample_rate_hz):
        if len(out) == n:
            break
        raw = coherence.coherence_map(x, y, g)
        out.append(_record(0, raw, np.zeros(g.shape, np.float32), slide_s=shift))
    return out


def chirp_map(seed, level: float, geometry: MapGeometry = PAPER, psd: str = "auto",
              max_draws: int = 5) -> dict:
    """One chirp map at visibility ``level`` (±10 %): fresh noise, Table I draw, visibility loop.

    A draw whose loop does not converge (rare: a tiny chirp asked for a high level) is replaced by
    a new draw, up to ``max_draws`` times.
    """
    g = geometry
    rng = np.random.default_rng(seed)
    h1, l1 = noise.detector_noise(g.duration_s, rng, sample_rate_hz=g.sample_rate_hz, model=psd)
    noise_map = coherence.coherence_map(h1, l1, g)
    for _ in range(max_draws):
        chirp = injections.draw_chirp(rng, g)
        try:
            inj = injections.inject_at_visibility(h1, l1, chirp, level, noise_map=noise_map, geometry=g)
        except TfphysError:
            continue
        target = injections.target_map(inj.injected_map, noise_map)
        return _record(1, inj.injected_map, target, visibility=level, visibility_measured=inj.visibility,
                       hrss=inj.hrss, amplitude=inj.amplitude, duration_s=chirp.duration_s,
                       delay_s=chirp.delay_s, f_start_hz=chirp.f_start_hz, f_end_hz=chirp.f_end_hz,
                       method=injections.METHODS.index(chirp.method), beta=chirp.beta,
                       rising=int(chirp.rising))
    raise TfphysError(f"no chirp reached visibility {level} in {max_draws} draws")


def glitch_map(seed, geometry: MapGeometry = PAPER, psd: str = "auto", loudness: float = 30.0) -> dict:
    """A zero-lag noise map with one coherent glitch (§III.B, Figure 11); its target is empty.

    Glitches are not what ALBUS is trained to find; these maps show how it reacts to them.
    """
    g = geometry
    rng = np.random.default_rng(seed)
    h1, l1 = noise.detector_noise(g.duration_s, rng, sample_rate_hz=g.sample_rate_hz, model=psd)
    t = float(rng.uniform(0.05, 0.95) * (g.duration_s - 1.0))
    noise.add_coherent_glitches(h1, l1, [t], rng, loudness=loudness, sample_rate_hz=g.sample_rate_hz,
                                model=psd)
    raw = coherence.coherence_map(h1, l1, g)
    return _record(2, raw, np.zeros(g.shape, np.float32), delay_s=t, duration_s=0.5)


def _run_task(task) -> list[dict]:
    kind, seed, arg, geometry, psd = task
    if kind == "background":
        return background_maps(seed, arg, geometry, psd)
    if kind == "chirp":
        return [chirp_map(seed, arg, geometry, psd)]
    return [glitch_map(seed, geometry, psd)]


def plan(n_background: int, n_per_level: int, levels=injections.VISIBILITY_LEVELS, n_glitch: int = 0,
         seed: int = 0, geometry: MapGeometry = PAPER, psd: str = "auto") -> list[tuple]:
    """The ordered task list of a dataset (each with its own ``SeedSequence`` child)."""
    if n_background < 0 or n_per_level < 0 or n_glitch < 0:
        raise TfphysError("map counts must be ≥ 0")
    if n_background + n_per_level * len(levels) + n_glitch == 0:
        raise TfphysError("nothing to build: every map count is 0")
    block = SLIDE_WINDOWS * (SLIDE_WINDOWS - 1)
    items = [("background", min(block, n_background - i)) for i in range(0, n_background, block)]
    for level in levels:
        if not level > 0:
            raise TfphysError(f"visibility levels must be positive, got {level}")
        items += [("chirp", float(level))] * n_per_level
    items += [("glitch", None)] * n_glitch
    seeds = np.random.SeedSequence(seed).spawn(len(items))
    return [(kind, s, arg, geometry, psd) for (kind, arg), s in zip(items, seeds)]


class AlbusWriter(ChunkWriter):
    """Append ALBUS map records to a new HDF5 file (flushed per append)."""

    length_key = "kind"

    def __init__(self, path, *, geometry: MapGeometry, psd: str, seed: int | None = None):
        super().__init__(path, seed=seed, format=ALBUS_FORMAT, version=ALBUS_VERSION, psd=psd,
                         colormap=COLORMAP, value_max=VALUE_MAX, methods=",".join(injections.METHODS),
                         **_geometry_attrs(geometry))
        t, f = geometry.shape
        self._file.create_dataset("maps", shape=(0, t, f, 3), maxshape=(None, t, f, 3), dtype=np.uint8,
                                  chunks=(1, t, f, 3), compression="gzip", compression_opts=1)
        self._file.create_dataset("targets", shape=(0, t, f), maxshape=(None, t, f), dtype=np.float16,
                                  chunks=(1, t, f), compression="gzip", compression_opts=1)
        self._file["maps"].attrs["axes"] = "map,time,frequency,channel"
        for name, dtype in (("kind", np.int8), *((k, d) for k, (d, _) in PARAMS.items())):
            self._file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(1024,))

    def append(self, records: list[dict]) -> None:
        if records:
            self._append({name: np.stack([np.asarray(r[name]) for r in records])
                          for name in ("maps", "targets", "kind", *PARAMS)})


def build(out, *, n_background: int, n_per_level: int, levels=injections.VISIBILITY_LEVELS,
          n_glitch: int = 0, seed: int = 0, workers: int | None = None, psd: str = "auto",
          geometry: MapGeometry = PAPER, progress: bool = True) -> int:
    """Build an ALBUS dataset into a new HDF5 file; return the number of maps written.

    The paper's training set: ``n_background=4500, n_per_level=500`` (9 levels, 9000 maps).
    ``workers``: processes (default: all cores; 1 runs in this process).
    """
    psd = noise.resolve_psd_model(psd)
    tasks = plan(n_background, n_per_level, levels, n_glitch, seed, geometry, psd)
    total = n_background + n_per_level * len(levels) + n_glitch
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    with AlbusWriter(out, geometry=geometry, psd=psd, seed=seed) as writer, tqdm(
        total=total, unit="map", desc="albus maps", disable=None if progress else True,
    ) as bar:
        if workers == 1:
            results = map(_run_task, tasks)
            pool = None
        else:  # spawn: safe even when TensorFlow is already imported in this process
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_run_task, tasks)
        try:
            for records in results:
                writer.append(records)
                bar.update(len(records))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
        return len(writer)


# ------------------------------------------------------------------------------ reading
def open_albus(path) -> h5py.File:
    """Open an ALBUS file read-only after validating its header; the caller closes it."""
    return open_validated(path, validate)


def is_albus_file(path) -> bool:
    """Whether ``path`` is an HDF5 file that says it is an ALBUS map file (no validation)."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == ALBUS_FORMAT
    except (OSError, ValueError):
        return False


def validate(f: h5py.File, path) -> int:
    """Check format, dataset names, dtypes, shapes and lengths; return the number of maps."""
    if f.attrs.get("format") != ALBUS_FORMAT:
        raise TfphysError(f"data file {path} is not an ALBUS map file (format {f.attrs.get('format')!r}, "
                          f"expected {ALBUS_FORMAT!r}; build one with `tfphys-data albus`)")
    missing = [k for k in ("maps", "targets", "kind", *PARAMS) if k not in f]
    if missing:
        raise TfphysError(f"data file {path} lacks dataset(s) {', '.join(missing)} (see tfphys/albus/storage.py)")
    maps, targets = f["maps"], f["targets"]
    n = maps.shape[0]
    if maps.ndim != 4 or maps.shape[-1] != 3 or maps.dtype != np.uint8:
        raise TfphysError(f"data file {path}: 'maps' must be uint8 (N, T, F, 3), got {maps.dtype} {maps.shape}")
    if targets.shape != maps.shape[:-1]:
        raise TfphysError(f"data file {path}: 'targets' {targets.shape} does not match 'maps' {maps.shape}")
    for name in ("kind", *PARAMS):
        if f[name].shape != (n,):
            raise TfphysError(f"data file {path}: '{name}' holds {f[name].shape} values for {n} maps")
    if n == 0:
        raise TfphysError(f"data file {path} holds no maps")
    bad = np.setdiff1d(np.unique(f["kind"][:]), list(KINDS))
    if bad.size:
        raise TfphysError(f"data file {path}: unknown map kind(s) {bad.tolist()}; expected 0, 1, 2")
    for name in PARAMS:
        values = f[name][:].astype(np.float64)
        if not np.isfinite(values).all():
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise TfphysError(f"data file {path}: '{name}' of map {i} is {values[i]}; expected a finite value")
    return n


def geometry_of(f: h5py.File) -> MapGeometry:
    return MapGeometry(*(float(f.attrs[k]) for k in ("sample_rate_hz", "duration_s", "stride_s",
                                                     "fftlength_s", "overlap_s")))


def summary(path) -> str:
    """Maps per kind and visibility level, with the measured visibility and hrss ranges."""
    with open_albus(path) as f:
        kind, level = f["kind"][:], f["visibility"][:]
        vis, h = f["visibility_measured"][:], f["hrss"][:]
        lines = [f"{path}: {len(kind)} maps of {f['maps'].shape[1]}×{f['maps'].shape[2]} "
                 f"(time × frequency), PSD {f.attrs['psd']}, format {f.attrs['format']} v{f.attrs['version']}"]
    lines.append(f"{'kind':>10} {'V level':>8} {'maps':>6} {'V measured':>16} {'hrss':>20}")
    for k in np.unique(kind):
        for lv in np.unique(level[kind == k]):
            sel = (kind == k) & (level == lv)
            vrange = f"{vis[sel].min():.1f}–{vis[sel].max():.1f}" if k == 1 else "—"
            hrange = f"{h[sel].min():.2e}–{h[sel].max():.2e}" if k == 1 else "—"
            lines.append(f"{KINDS[int(k)]:>10} {lv:8g} {sel.sum():6d} {vrange:>16} {hrange:>20}")
    return "\n".join(lines)


def default_dataset(n_background: int, n_per_level: int, seed: int, *, n_glitch: int = 0,
                    psd: str = "auto", progress: bool = True, workers: int | None = None) -> Path:
    """Path of a cached ALBUS dataset (:func:`tfphys.cache.cached`), building it first if needed.

    The PSD actually used is part of the name, so files made with and without lalsuite never
    stand in for each other.
    """
    psd = noise.resolve_psd_model(psd)
    name = (f"albus-bg{n_background}-inj{n_per_level}-gl{n_glitch}-{psd}-seed{seed}"
            f"-v{ALBUS_VERSION}.h5")
    return cached(name, lambda tmp: build(tmp, n_background=n_background, n_per_level=n_per_level,
                                          n_glitch=n_glitch, seed=seed, psd=psd, progress=progress,
                                          workers=workers))
