"""The arithmetic of the report in HLT terms: working point, trigger-decision flips, farm cost.

A trigger fires on an event when its anomaly score is **strictly above** the threshold. The
threshold of a working point is set on the background (QCD) scores of the labelled sample so that
a target fraction of them fires — given as an efficiency, or as a background rate at an input rate
(``rate / input rate``). On ``n`` background events at most ``⌊ε·n⌋`` may fire, so the threshold lies
between the ``⌊ε·n⌋``-th and the next highest background score (:func:`threshold_for_efficiency`);
the efficiency reached is reported beside the target (it is below it when ``ε·n`` is not whole or
scores tie; a sample resolves efficiencies down to ``1/n``).

Farm cost: a node runs one single-threaded instance per core, so keeping up with an input rate
needs ``rate × time per event`` cores (100 kHz × 14 ms = 1400 cores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: the L1 accept rate into the HLT that the CoDAE paper quotes (Hz); ``--rate-hz``'s default
INPUT_RATE_HZ = 100_000.0
#: the background rate kept by the default working point (Hz): 1 % of the default input rate
BACKGROUND_RATE_HZ = 1_000.0


def efficiency_for_rate(background_rate_hz: float, input_rate_hz: float) -> float:
    """The background efficiency that turns ``input_rate_hz`` of background into ``background_rate_hz``."""
    if not 0 < background_rate_hz < input_rate_hz:
        raise ValueError(f"need 0 < background rate < input rate, got {background_rate_hz:g} Hz "
                         f"and {input_rate_hz:g} Hz")
    return background_rate_hz / input_rate_hz


def threshold_for_efficiency(background_scores, efficiency: float) -> float:
    """The score threshold above which a fraction ``efficiency`` of ``background_scores`` lies: with
    ``k = ⌊efficiency·n⌋``, midway between the ``k``-th and ``(k+1)``-th highest scores, so that
    exactly ``k`` events fire when those two differ, and no event sits on the threshold (where the
    least difference between two models' scores would flip it); ``k = 0`` (an efficiency below the
    sample's resolution ``1/n``): the highest score, nothing fires. ``efficiency`` in (0, 1)."""
    b = np.asarray(background_scores, np.float64).ravel()
    if len(b) == 0 or not np.all(np.isfinite(b)):
        raise ValueError("need at least one finite background score")
    if not 0 < efficiency < 1:
        raise ValueError(f"the background efficiency must be in (0, 1), got {efficiency:g}")
    k = int(np.floor(efficiency * len(b) + 1e-9))
    ranked = np.sort(b)[::-1]
    return float(ranked[0] if k == 0 else 0.5 * (ranked[k - 1] + ranked[k]))


def fires(scores, threshold: float) -> np.ndarray:
    """The trigger decision per event: score strictly above ``threshold``."""
    return np.asarray(scores, np.float64) > threshold


def efficiency(scores, threshold: float) -> float:
    """Fraction of ``scores`` that fire at ``threshold``."""
    s = np.asarray(scores, np.float64).ravel()
    if len(s) == 0:
        raise ValueError("no scores")
    return float(fires(s, threshold).mean())


def flips(reference_scores, exported_scores, threshold: float) -> int:
    """Events whose trigger decision at ``threshold`` differs between the two models' scores."""
    r, e = np.asarray(reference_scores).ravel(), np.asarray(exported_scores).ravel()
    if r.shape != e.shape:
        raise ValueError(f"{r.shape} and {e.shape} scores")
    return int(np.count_nonzero(fires(r, threshold) != fires(e, threshold)))


def farm_cores(input_rate_hz: float, ms_per_event: float) -> float:
    """Cores that keep up with ``input_rate_hz`` at ``ms_per_event`` each: rate × time."""
    if input_rate_hz <= 0 or ms_per_event < 0:
        raise ValueError(f"need a positive rate and a non-negative time, got {input_rate_hz:g} Hz, "
                         f"{ms_per_event:g} ms")
    return input_rate_hz * ms_per_event / 1e3


def working_point(exported_scores, reference_scores, is_signal, classes: Sequence[str] | None, *,
                  background_efficiency: float, target: Mapping[str, Any]) -> dict[str, Any]:
    """The working point on a labelled sample: the threshold on the *exported* model's background
    scores at ``background_efficiency``, the efficiency it reaches, the signal efficiency per signal
    class (``classes``: per-event names, e.g. ``"SUEP 125 GeV"``; None: one class ``signal``), and the
    decisions that flip against the reference (Keras) scores at that threshold, over all events.
    ``target``: how the efficiency was asked for (recorded as given)."""
    s = np.asarray(exported_scores, np.float64).ravel()
    y = np.asarray(is_signal).astype(bool).ravel()
    names = np.asarray(classes if classes is not None else np.where(y, "signal", "background"), dtype=object)
    if not (len(s) == len(y) == len(names)) or y.all() or not y.any():
        raise ValueError("a working point needs background and signal events, one score and class each")
    threshold = threshold_for_efficiency(s[~y], background_efficiency)
    signal = {str(c): {"events": int(np.sum(names[y] == c)), "efficiency": efficiency(s[y][names[y] == c], threshold)}
              for c in dict.fromkeys(names[y])}
    return {
        **target,
        "background_efficiency_target": background_efficiency,
        "threshold": threshold,
        "background_events": int((~y).sum()),
        "background_efficiency": efficiency(s[~y], threshold),
        "resolution": 1 / int((~y).sum()),
        "signal_efficiency": signal,
        "signal_efficiency_all": efficiency(s[y], threshold),
        "flips": flips(reference_scores, s, threshold),
        "flip_events": int(len(s)),
    }
