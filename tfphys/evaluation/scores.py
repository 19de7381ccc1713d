"""Anomaly scores — CoDAE paper §4.6. Small numpy functions of (x, x̂) or of latents.

Argument order is always ``(x, x_hat)``: the input first, the reconstruction second. A swapped
BCE (``log x`` instead of ``log x̂``) is a real bug seen in published code, and it matters: the
logarithm must act on the model's probabilities, never on the binary input.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # the clipping of keras.ops.binary_crossentropy, so score and loss agree


def bce(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Summed binary cross-entropy per event:
    ``BCE(x, x̂) = −Σ_p [x_p log x̂_p + (1 − x_p) log(1 − x̂_p)]``.

    ``x``: inputs in [0, 1], ``x_hat``: predicted probabilities, both ``(batch, ...)``.
    Returns ``(batch,)``; larger = more anomalous.
    """
    x = np.asarray(x, np.float64)
    p = np.clip(np.asarray(x_hat, np.float64), EPSILON, 1.0 - EPSILON)
    per_pixel = -(x * np.log(p) + (1.0 - x) * np.log1p(-p))
    return per_pixel.reshape(len(per_pixel), -1).sum(axis=1)
