"""Chirp injections set by visibility, and their target maps — ALBUS paper §I.B–C, §II.B, Table I.

Signals are chirps from ``scipy.signal.chirp`` (linear, quadratic, logarithmic or hyperbolic
frequency evolution) whose energy is shaped by the first (energy rising) or second (energy falling)
half of a Kaiser window of twice the signal's length, with shape β ∈ [1, 4]. The same strain
``A · w(t − delay)`` enters both detectors (§I.C).

Strength is set by the *visibility* (Eq. 4) ``V = Σ_ij (S_ij − N_ij)`` of the injected map ``S``
against the noise-only map ``N``. We evaluate Eq. (4) on the **raw coherence** maps (Eq. 1), before
the per-frequency normalisation: after that normalisation every frequency column of both maps sums
to exactly 1, so Eq. (4) would vanish identically. In coherence units V is roughly "the number of
pixels made fully coherent", which matches the paper's levels 12…60. The amplitude ``A`` is found
by an iterative loop (secant steps in log A – log V, safeguarded by bisection) until V is within
±10 % of the requested level (§III.A); ``hrss`` (Eq. 3) of the final injection is reported.

Target maps (§II.B): the signal's contribution ``D = S − N`` (raw coherence), keeping the pixels
above its 99th percentile (the top 1 % of the map) and above zero, else 0. ``D`` is a difference
of two coherences, so ``D ≤ 1`` and the kept pixels lie in (0, 1] without rescaling: the target
follows the signal's intensity along the track *and across maps* (a V = 12 injection gives a faint
target, a V = 60 one a bright target). A background map has ``S = N``, hence ``D = 0`` and an
empty target. The file stores this D; the training pipeline then applies §II.B's "we then
normalize" by dividing each target by its own peak (``tfphys.albus.pipeline.normalise_targets``,
``[pipeline] target = "max"``, the default): the intensity profile along the track stays, every
chirp's peak becomes 1 — with the raw D (``target = "raw"``) a target pixel is ~0.01 on average
and the all-zero output already reaches an MSE of ~10⁻⁴, little for a short training to improve on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

from tfphys.albus.coherence import PAPER, MapGeometry, coherence_map
from tfphys.errors import TfphysError

METHODS = ("linear", "quadratic", "logarithmic", "hyperbolic")
VISIBILITY_LEVELS = (12, 14, 16, 18, 20, 30, 40, 50, 60)
#: Table I of the paper: ranges drawn uniformly
TABLE_I = {
    "duration_s": (10.0, 500.0),
    "delay_s": (0.0, 500.0),
    "frequency_hz": (30.0, 2000.0),
    "beta": (1.0, 4.0),
}
VISIBILITY_TOLERANCE = 0.10
TARGET_PERCENTILE = 99.0


@dataclass(frozen=True)
class Chirp:
    """One chirp injection's parameters (Table I).

    ``rising``: energy shaped by the first half of the Kaiser window (rising energy), else by the
    second half (falling energy).
    """

    duration_s: float
    delay_s: float
    f_start_hz: float
    f_end_hz: float
    method: str = "linear"
    beta: float = 2.0
    rising: bool = True

    def validate(self, geometry: MapGeometry = PAPER) -> "Chirp":
        nyquist = geometry.sample_rate_hz / 2
        if self.method not in METHODS:
            raise TfphysError(f"unknown chirp method {self.method!r}; expected one of {', '.join(METHODS)}")
        if not self.duration_s > 0:
            raise TfphysError(f"chirp duration must be positive, got {self.duration_s} s")
        if self.delay_s < 0:
            raise TfphysError(f"chirp delay must be ≥ 0, got {self.delay_s} s")
        if self.delay_s + self.duration_s > geometry.duration_s:
            raise TfphysError(
                f"chirp of {self.duration_s:g} s at delay {self.delay_s:g} s ends after the "
                f"{geometry.duration_s:g} s map")
        for name in ("f_start_hz", "f_end_hz"):
            f = getattr(self, name)
            if not 0 < f <= nyquist:
                raise TfphysError(f"{name} = {f:g} Hz is outside (0, {nyquist:g}] Hz (Nyquist at "
                                  f"{geometry.sample_rate_hz:g} Hz)")
        if self.method == "hyperbolic" and self.f_start_hz == self.f_end_hz:
            raise TfphysError("a hyperbolic chirp needs f_start_hz ≠ f_end_hz")
        if self.beta < 0:
            raise TfphysError(f"Kaiser β must be ≥ 0, got {self.beta}")
        return self


def draw_chirp(rng: np.random.Generator, geometry: MapGeometry = PAPER, ranges=None) -> Chirp:
    """Table I: duration, delay, start and end frequencies, method, β and half drawn uniformly.

    For a geometry smaller than the paper's, the ranges shrink to fit it (durations up to half the
    map, delays such that the chirp ends inside it, frequencies up to 2000/2048 of Nyquist).
    """
    r = dict(TABLE_I, **(ranges or {}))
    d_lo, d_hi = r["duration_s"]
    d_hi = min(d_hi, geometry.duration_s / 2)
    duration = rng.uniform(min(d_lo, d_hi), d_hi)
    delay = rng.uniform(r["delay_s"][0], min(r["delay_s"][1], geometry.duration_s - duration))
    f_hi = min(r["frequency_hz"][1], geometry.sample_rate_hz / 2 * 2000 / 2048)
    f0, f1 = rng.uniform(min(r["frequency_hz"][0], f_hi), f_hi, size=2)
    return Chirp(duration_s=float(duration), delay_s=float(delay), f_start_hz=float(f0),
                 f_end_hz=float(f1), method=METHODS[rng.integers(len(METHODS))],
                 beta=float(rng.uniform(*r["beta"])), rising=bool(rng.integers(2))).validate(geometry)


def instantaneous_frequency(chirp: Chirp, t: np.ndarray) -> np.ndarray:
    """The frequency law f(t) (Hz) of ``scipy.signal.chirp`` for ``t`` ∈ [0, T] (T the duration)."""
    f0, f1, T = chirp.f_start_hz, chirp.f_end_hz, chirp.duration_s
    t = np.asarray(t, float)
    if chirp.method == "linear":
        return f0 + (f1 - f0) * t / T
    if chirp.method == "quadratic":  # vertex at t = 0
        return f0 + (f1 - f0) * t**2 / T**2
    if chirp.method == "logarithmic":
        return f0 * (f1 / f0) ** (t / T)
    return f0 * f1 * T / ((f0 - f1) * t + f1 * T)  # hyperbolic


def kaiser_half(n: int, beta: float, rising: bool) -> np.ndarray:
    """The first (rising) or second (falling) half of a Kaiser window of ``2n`` samples (§I.C)."""
    window = signal.windows.kaiser(2 * n, beta, sym=True)
    return window[:n] if rising else window[n:]


def waveform(chirp: Chirp, sample_rate_hz: float = PAPER.sample_rate_hz) -> np.ndarray:
    """Unit-amplitude chirp × Kaiser half-window, float64 of ``round(duration · fs)`` samples."""
    n = round(chirp.duration_s * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz
    wave = signal.chirp(t, f0=chirp.f_start_hz, t1=chirp.duration_s, f1=chirp.f_end_hz,
                        method=chirp.method)
    return wave * kaiser_half(n, chirp.beta, chirp.rising)


def hrss(strain: np.ndarray, sample_rate_hz: float = PAPER.sample_rate_hz) -> float:
    """Eq. (3): ``hrss = √(∫ h(t)² dt)`` (strain · √s), by the rectangle rule."""
    return float(np.sqrt(np.sum(np.square(strain)) / sample_rate_hz))


def visibility(injected_map: np.ndarray, noise_map: np.ndarray) -> float:
    """Eq. (4): ``V = Σ_ij (S_ij − N_ij)`` over every pixel (raw coherence maps)."""
    return float(np.sum(injected_map, dtype=np.float64) - np.sum(noise_map, dtype=np.float64))


def target_map(injected_map: np.ndarray, noise_map: np.ndarray,
               percentile: float = TARGET_PERCENTILE) -> np.ndarray:
    """§II.B: ``D = S − N`` kept where above its ``percentile`` and above 0; float32 in [0, 1]."""
    d = np.asarray(injected_map, np.float32) - np.asarray(noise_map, np.float32)
    threshold = max(float(np.percentile(d, percentile)), 0.0)
    return np.where(d > threshold, np.clip(d, 0.0, 1.0), 0.0).astype(np.float32)


@dataclass(frozen=True)
class Injection:
    chirp: Chirp
    amplitude: float          # strain amplitude A of the unit waveform
    hrss: float               # Eq. (3) of A · w(t)
    visibility: float         # measured V (Eq. 4)
    requested: float          # requested level
    iterations: int
    injected_map: np.ndarray  # raw coherence S, (n_time, n_freq)

    def params(self) -> dict:
        out = asdict(self.chirp)
        out.update(amplitude=self.amplitude, hrss=self.hrss, visibility=self.visibility,
                   requested=self.requested, iterations=self.iterations)
        return out


def _strides(chirp: Chirp, g: MapGeometry) -> tuple[int, int]:
    """Stride range [i0, i1) whose samples the chirp touches (the others keep N exactly)."""
    i0 = int(math.floor(chirp.delay_s / g.stride_s))
    i1 = int(math.ceil((chirp.delay_s + chirp.duration_s) / g.stride_s))
    return min(i0, g.n_time), min(max(i1, i0 + 1), g.n_time)


def inject_at_visibility(h1: np.ndarray, l1: np.ndarray, chirp: Chirp, level: float, *,
                         noise_map: np.ndarray | None = None, geometry: MapGeometry = PAPER,
                         tolerance: float = VISIBILITY_TOLERANCE, max_iter: int = 40,
                         initial_amplitude: float | None = None) -> Injection:
    """The visibility loop (§III.A): find ``A`` with ``|V(A) − level| ≤ tolerance · level``.

    ``h1``, ``l1``: noise streams (not modified). ``noise_map``: their raw coherence map (computed if
    not given). Only the strides the chirp touches are recomputed per iteration. Raises a
    :class:`TfphysError` if the loop does not converge in ``max_iter`` steps (the builder then
    draws a new chirp).
    """
    g = geometry
    chirp.validate(g)
    if not level > 0:
        raise TfphysError(f"visibility level must be positive, got {level}")
    if not 0 < tolerance < 1:
        raise TfphysError(f"visibility tolerance must be in (0, 1), got {tolerance}")
    if noise_map is None:
        noise_map = coherence_map(h1, l1, g)
    wave = waveform(chirp, g.sample_rate_hz)
    start = round(chirp.delay_s * g.sample_rate_hz)
    i0, i1 = _strides(chirp, g)
    lo, hi = i0 * g.stride, i1 * g.stride
    sub = MapGeometry(g.sample_rate_hz, (i1 - i0) * g.stride_s, g.stride_s, g.fftlength_s, g.overlap_s)
    n_part = noise_map[i0:i1]
    w_part = np.zeros(hi - lo)
    stop = min(start + len(wave), hi)
    w_part[start - lo: stop - lo] = wave[: stop - start]

    def part_map(amplitude):
        return coherence_map(h1[lo:hi] + amplitude * w_part, l1[lo:hi] + amplitude * w_part, sub)

    if initial_amplitude is None:  # the noise's amplitude per frequency bin: the right order
        initial_amplitude = 0.1 * float(np.std(h1[lo:hi])) * math.sqrt(g.n_freq / g.n_avg)
    log_target = math.log(level)
    a = math.log(initial_amplitude)
    bracket_lo, bracket_hi = -math.inf, math.inf
    points: list[tuple[float, float]] = []
    for it in range(1, max_iter + 1):
        s_part = part_map(math.exp(a))
        v = visibility(s_part, n_part)
        if abs(v - level) <= tolerance * level:
            injected = noise_map.copy()
            injected[i0:i1] = s_part
            amplitude = math.exp(a)
            return Injection(chirp, amplitude, hrss(amplitude * wave, g.sample_rate_hz), v, float(level),
                             it, injected)
        if v < level:
            bracket_lo = max(bracket_lo, a)
        else:
            bracket_hi = min(bracket_hi, a)
        if v <= 0.05 * level:  # nothing visible yet: grow fast
            step = math.log(4.0)
        else:
            points.append((a, math.log(v)))
            slope = 2.0  # V ∝ A² while the coherence is far from saturation
            if len(points) >= 2 and points[-1][0] != points[-2][0]:
                slope = (points[-1][1] - points[-2][1]) / (points[-1][0] - points[-2][0])
                slope = min(max(slope, 0.3), 4.0)
            step = max(min((log_target - math.log(v)) / slope, math.log(4.0)), -math.log(4.0))
        a_new = a + step
        if not bracket_lo < a_new < bracket_hi:  # the secant left the bracket: bisect
            if math.isinf(bracket_lo):
                a_new = bracket_hi - math.log(2.0)
            elif math.isinf(bracket_hi):
                a_new = bracket_lo + math.log(2.0)
            else:
                a_new = 0.5 * (bracket_lo + bracket_hi)
        a = a_new
    raise TfphysError(f"visibility loop did not reach V = {level:g} ± {tolerance:.0%} in {max_iter} "
                      f"steps (last V = {v:.3g}) for {chirp}")
