"""H1/L1-like detector noise, coherent glitches and time slides — ALBUS paper §I.A.

Noise is Gaussian, stationary, coloured by a LIGO sensitivity curve and independent between the
two detectors. The curve (one-sided PSD, strain²/Hz):

* ``"O3"``: Advanced LIGO's O3 low curve (LIGO-T1800545) shipped with lalsuite
  (``lalsimulation.SimNoisePSDaLIGOaLIGOO3LowT1800545``). lalsuite is the optional extra
  ``pip install tfphys[gw]``.
* ``"analytic"``: the aLIGO design (zero-detuning, high-power) analytic fit of Ajith (2011),
  ``S(f) = 1e-49 [x^-4.14 − 5 x^-2 + 111 (1 − x² + x⁴/2)/(1 + x²/2)]``, ``x = f / 215 Hz``: a
  clearly labelled stand-in with the same bucket shape, ~10× lower than O3 in the bucket (the
  coherence maps do not depend on the overall scale, only on the shape).
* ``"auto"`` (default): ``"O3"`` when lalsuite imports, else ``"analytic"``. Every data file
  records which curve it used (attribute ``psd``), so the two are never mixed up silently.

Below ``f_low_hz`` (10 Hz) the curve is held at its ``f_low`` value (the maps' band starts at
30 Hz; this only avoids unphysical zeros). lalsuite provides the *curve*; the time series are
synthesised here in the frequency domain with numpy (seeded by numpy, ~0.2 s per 1000 s stream
instead of ~1.3 s with ``lalsimulation.SimNoise``).

Background maps come from *time slides* (§I.A): the L1 stream is shifted circularly by more than
the longest signal (≥ 500 s) against H1, so that nothing astrophysical can stay coincident.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import fft

from tfphys.errors import TfphysError

SAMPLE_RATE_HZ = 4096.0
F_LOW_HZ = 10.0
PSD_MODELS = ("auto", "O3", "analytic")


def has_lalsuite() -> bool:
    try:
        import lalsimulation  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_psd_model(model: str = "auto") -> str:
    """``"auto"`` → ``"O3"`` with lalsuite, else ``"analytic"``; ``"O3"`` without lalsuite is an error."""
    if model not in PSD_MODELS:
        raise TfphysError(f"unknown PSD model {model!r}; expected one of {', '.join(PSD_MODELS)}")
    if model == "auto":
        return "O3" if has_lalsuite() else "analytic"
    if model == "O3" and not has_lalsuite():
        raise TfphysError("the O3 PSD needs lalsuite: pip install 'tfphys[gw]' (or use psd='analytic', "
                          "the aLIGO design fit)")
    return model


def analytic_psd(frequencies_hz: np.ndarray, f_low_hz: float = F_LOW_HZ) -> np.ndarray:
    """aLIGO zero-detuning high-power analytic fit (Ajith 2011), strain²/Hz, held flat below f_low."""
    f = np.maximum(np.asarray(frequencies_hz, float), f_low_hz)
    x = f / 215.0
    return 1e-49 * (x**-4.14 - 5 * x**-2 + 111 * (1 - x**2 + x**4 / 2) / (1 + x**2 / 2))


@functools.lru_cache(maxsize=8)
def _o3_psd(n_freq: int, delta_f: float, f_low_hz: float) -> np.ndarray:
    import lal
    import lalsimulation

    series = lal.CreateREAL8FrequencySeries("psd", 0, 0.0, delta_f, lal.DimensionlessUnit, n_freq)
    lalsimulation.SimNoisePSDaLIGOaLIGOO3LowT1800545(series, f_low_hz)
    values = np.array(series.data.data)
    nonzero = np.flatnonzero(values > 0)
    values[: nonzero[0]] = values[nonzero[0]]     # below f_low: held flat
    values[nonzero[-1] + 1:] = values[nonzero[-1]]  # the file stops just short of Nyquist
    values.setflags(write=False)
    return values


def psd(n_samples: int, sample_rate_hz: float = SAMPLE_RATE_HZ, model: str = "auto",
        f_low_hz: float = F_LOW_HZ) -> np.ndarray:
    """One-sided PSD (strain²/Hz) on the ``rfftfreq(n_samples, 1/fs)`` grid."""
    model = resolve_psd_model(model)
    n_freq, delta_f = n_samples // 2 + 1, sample_rate_hz / n_samples
    if model == "O3":
        return _o3_psd(n_freq, delta_f, f_low_hz)
    return analytic_psd(np.arange(n_freq) * delta_f, f_low_hz)


def coloured_noise(n_samples: int, rng: np.random.Generator, *, sample_rate_hz: float = SAMPLE_RATE_HZ,
                   model: str = "auto", n_streams: int = 1) -> np.ndarray:
    """Stationary Gaussian noise with one-sided PSD ``S(f)``: float32 ``(n_streams, n_samples)``.

    Frequency-domain synthesis: ``X_k = √(S(f_k) N f_s / 4) (a + i b)``, ``a, b ~ N(0, 1)``, so that
    ``E|X_k|² = S N f_s / 2`` — the periodogram of a series with one-sided PSD ``S`` — then
    ``irfft``. DC and Nyquist are set to zero. Streams are independent.
    """
    if n_samples < 2:
        raise TfphysError(f"need at least 2 samples of noise, got {n_samples}")
    s = psd(n_samples, sample_rate_hz, model)
    scale = np.sqrt(s * n_samples * sample_rate_hz / 4).astype(np.float32)
    n_freq = n_samples // 2 + 1
    # float32 throughout: strain ~1e-21 is far above float32's 1e-38, and it halves the FFT time
    spectrum = np.empty((n_streams, n_freq), np.complex64)
    spectrum.real = rng.standard_normal((n_streams, n_freq), dtype=np.float32)
    spectrum.imag = rng.standard_normal((n_streams, n_freq), dtype=np.float32)
    spectrum *= scale
    spectrum[:, 0] = 0
    if n_samples % 2 == 0:
        spectrum[:, -1] = 0
    return fft.irfft(spectrum, n=n_samples, axis=-1, workers=1)


def detector_noise(duration_s: float, rng: np.random.Generator, *, sample_rate_hz: float = SAMPLE_RATE_HZ,
                   model: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Independent H1 and L1 noise streams of ``duration_s`` at ``sample_rate_hz``."""
    n = round(duration_s * sample_rate_hz)
    h1, l1 = coloured_noise(n, rng, sample_rate_hz=sample_rate_hz, model=model, n_streams=2)
    return h1, l1


def add_coherent_glitches(h1: np.ndarray, l1: np.ndarray, times_s, rng: np.random.Generator, *,
                          loudness: float = 30.0, duration_s: float = 0.5,
                          sample_rate_hz: float = SAMPLE_RATE_HZ, model: str = "auto"):
    """Add short broadband transients at the same times in both detectors (in place).

    Each glitch is a burst of noise coloured like the detectors' own (so it is broadband *after
    whitening*), ``loudness`` times the detector's amplitude, under a Hann envelope of
    ``duration_s`` (< 1 s, most real glitches are shorter than a 6 s pixel), and identical in H1
    and L1: it makes one or two pixel columns coherent across the band — the paper's vertical
    lines (§III.B, Figure 11). Returns the list of glitch start times.
    """
    n = round(duration_s * sample_rate_hz)
    if n < 2:
        raise TfphysError(f"glitch duration {duration_s} s is shorter than two samples")
    window = np.hanning(n)
    times = []
    for t in np.atleast_1d(times_s):
        start = round(float(t) * sample_rate_hz)
        if start < 0 or start + n > len(h1):
            raise TfphysError(f"glitch at {t} s does not fit the {len(h1) / sample_rate_hz:g} s stream")
        burst = coloured_noise(n, rng, sample_rate_hz=sample_rate_hz, model=model)[0] * loudness * window
        h1[start:start + n] += burst
        l1[start:start + n] += burst
        times.append(float(t))
    return times


def time_slide_pairs(h1: np.ndarray, l1: np.ndarray, map_duration_s: float, *,
                     min_shift_s: float = 500.0, sample_rate_hz: float = SAMPLE_RATE_HZ):
    """Background (H1, L1) pairs of ``map_duration_s`` from time slides of two long streams.

    The streams are cut into ``k`` windows of ``map_duration_s``; L1 is slid circularly by every
    non-zero multiple ``j · map_duration_s`` (j = 1 … k−1), which must be ≥ ``min_shift_s`` (longer
    than any target signal, so no signal can be coincident with itself). Yields ``k (k − 1)``
    pairs ``(h1_window, l1_window, shift_s)``; the zero lag (the "foreground") is never returned.
    """
    n_map = round(map_duration_s * sample_rate_hz)
    k = len(h1) // n_map
    if len(h1) != len(l1):
        raise TfphysError(f"time slides need streams of equal length, got {len(h1)} and {len(l1)}")
    if k < 2:
        raise TfphysError(f"time slides need streams of at least 2 × {map_duration_s:g} s")
    if map_duration_s < min_shift_s:
        raise TfphysError(f"slides of {map_duration_s:g} s are shorter than the minimum {min_shift_s:g} s")
    h1, l1 = h1[: k * n_map], l1[: k * n_map]
    for j in range(1, k):
        slid = np.roll(l1, j * n_map)
        for w in range(k):
            yield h1[w * n_map:(w + 1) * n_map], slid[w * n_map:(w + 1) * n_map], j * map_duration_s
