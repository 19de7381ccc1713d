"""Anomaly scores — CoDAE paper §4.6 — and the physics baselines of §5.2 (Eq. 4, nTracks).

Small numpy functions. Reconstruction scores take ``(x, x_hat)``: the input first, the
reconstruction second, both ``(batch, ...)`` with pixels in [0, 1]; each returns ``(batch,)`` and
larger always means more anomalous. A swapped BCE (``log x`` instead of ``log x̂``) is a real bug
seen in published code, and it matters: the logarithm must act on the model's probabilities, never
on the binary input.

The KL scores of the Categorical CoDVAE live with the model (:func:`tfphys.darkshowers.codvae.kl_scores`),
because they need its latent distribution, not images.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # the clipping of keras.ops.binary_crossentropy, so score and loss agree


def _per_event(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).sum(axis=1)


def _pair(x, x_hat) -> tuple[np.ndarray, np.ndarray]:
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"input {x.shape} and reconstruction {x_hat.shape} differ in shape")
    return x, x_hat


def bce(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Summed binary cross-entropy:
    ``BCE(x, x̂) = −Σ_p [x_p log x̂_p + (1 − x_p) log(1 − x̂_p)]`` (x̂ clipped to [ε, 1 − ε])."""
    x, x_hat = _pair(x, x_hat)
    p = np.clip(x_hat, EPSILON, 1.0 - EPSILON)
    return _per_event(-(x * np.log(p) + (1.0 - x) * np.log1p(-p)))


def sse(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Sum of squared errors ``Σ_p (x_p − x̂_p)²``."""
    x, x_hat = _pair(x, x_hat)
    return _per_event((x - x_hat) ** 2)


def sae(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Sum of absolute errors ``Σ_p |x_p − x̂_p|`` (equals SSE on binary reconstructions)."""
    x, x_hat = _pair(x, x_hat)
    return _per_event(np.abs(x - x_hat))


def sae_mask(x: np.ndarray, x_hat: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """SAE between occupancy masks ``Σ_p |1[x_p > 0] − 1[x̂_p > 0]|``.

    A predicted probability is never exactly 0, so a reconstruction pixel counts as occupied when
    it exceeds ``threshold`` (0.5: the mode of its Bernoulli distribution); the input's pixels are
    occupied when ``> 0`` as in the paper.
    """
    x, x_hat = _pair(x, x_hat)
    return _per_event(np.abs((x > 0).astype(np.float64) - (x_hat > threshold)))


def inverse_dice(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """Inverse Dice coefficient ``(Σ x_p² + Σ x̂_p²) / (2 Σ x_p x̂_p)``: 1 for a perfect
    reconstruction, larger for worse ones (+inf where the two share no pixel at all)."""
    x, x_hat = _pair(x, x_hat)
    num = _per_event(x ** 2) + _per_event(x_hat ** 2)
    den = 2.0 * _per_event(x * x_hat)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def pixel_sum(x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
    """``PixelSum = Σ_p x̂_p``: the predicted occupancy (≈ nTracks on mask images). ``x`` unused."""
    _, x_hat = _pair(x, x_hat)
    return _per_event(x_hat)


#: The reconstruction scores of §4.6, by the names the tables use.
RECONSTRUCTION_SCORES = {
    "BCE": bce, "SSE": sse, "SAE": sae, "SAE-mask": sae_mask, "Dice⁻¹": inverse_dice,
    "PixelSum": pixel_sum,
}


def total_energy(images: np.ndarray) -> np.ndarray:
    """Eq. (4), the total-energy baseline: ``s(c) = Σ_i^H Σ_j^W x_{i,j,c}`` for every channel ``c``
    (0 tracker p_T, 1 ECAL E_T, 2 HCAL E_T) of images ``(batch, H, W, C)`` → ``(batch, C)``,
    summed in float64 — the sums :func:`tfphys.darkshowers.evaluate.read_test_file` reports as the
    "Total energy (Trk / ECAL / HCAL)" rows."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"need images (batch, H, W, C), got shape {images.shape}")
    return images.sum(axis=(1, 2), dtype=np.float64)
