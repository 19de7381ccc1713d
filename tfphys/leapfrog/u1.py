"""2D U(1) lattice gauge theory on an ``L × L`` periodic lattice (LeapfrogLayers paper, §1.1).

Links ``U_μ(n) = exp(i x_μ(n))`` are stored as angles ``x ∈ [−π, π)`` of shape
``(batch, L, L, 2)``: ``x[:, n0, n1, μ]`` is the link leaving site ``n = (n0, n1)`` in direction
``μ`` (``μ = 0`` along axis 1, ``μ = 1`` along axis 2); the batch axis runs over Markov chains.
Every function is a vectorised TensorFlow op over that batch (dtype follows ``x``); the exact
results at the end are NumPy/SciPy.

The plaquette at site ``n`` is (Eq. 4's ``x_P``, with ``μ = 0, ν = 1``)::

    x_P(n) = x_0(n) + x_1(n + 0̂) − x_0(n + 1̂) − x_1(n)
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

TWO_PI = 2.0 * math.pi


def wrap(x):
    """Map angles to ``[−π, π)``: ``⌊x⌉ = x − 2π ⌊(x + π) / 2π⌋`` (the projection of Eq. 5)."""
    return x - TWO_PI * tf.floor((x + math.pi) / TWO_PI)


def random_links(shape, seed, dtype=tf.float32):
    """A hot start: ``shape = (batch, L, L, 2)`` links uniform on ``[−π, π)``, stateless in ``seed``."""
    return tf.random.stateless_uniform(shape, seed=[int(seed), 0], minval=-math.pi,
                                       maxval=math.pi, dtype=dtype)


def plaquettes(x):
    """Plaquette angles ``x_P`` (not wrapped), shape ``(batch, L, L)`` from links ``(batch, L, L, 2)``."""
    x0, x1 = x[..., 0], x[..., 1]
    return x0 + tf.roll(x1, -1, axis=1) - tf.roll(x0, -1, axis=2) - x1


def wilson_action(x, beta):
    """Eq. (4): ``S_β(x) = β Σ_P (1 − cos x_P)`` per chain, shape ``(batch,)``.

    ``beta``: a scalar or one value per chain, shape ``(batch,)``.
    """
    beta = tf.cast(beta, x.dtype)
    return beta * tf.reduce_sum(1.0 - tf.cos(plaquettes(x)), axis=(1, 2))


def action_gradient(x, beta):
    """``∂S_β/∂x_μ(n)``, shape ``(batch, L, L, 2)`` (analytic; ``dS/dx_P = β sin x_P``).

    ``x_0(n)`` enters ``x_P(n)`` with ``+`` and ``x_P(n − 1̂)`` with ``−``; ``x_1(n)`` enters
    ``x_P(n)`` with ``−`` and ``x_P(n − 0̂)`` with ``+``.
    """
    beta = tf.reshape(tf.cast(beta, x.dtype), (-1, 1, 1))
    s = beta * tf.sin(plaquettes(x))
    g0 = s - tf.roll(s, 1, axis=2)
    g1 = tf.roll(s, 1, axis=1) - s
    return tf.stack([g0, g1], axis=-1)


def average_plaquette(x):
    """``⟨cos x_P⟩`` over the lattice, per chain, shape ``(batch,)``."""
    return tf.reduce_mean(tf.cos(plaquettes(x)), axis=(1, 2))


def charge_int(x):
    """Eq. (5): ``Q_Z = Σ_P ⌊x_P⌉ / 2π`` per chain, shape ``(batch,)``.

    An integer on every configuration (on the torus every link enters two plaquettes with
    opposite signs, so ``Σ_P x_P = 0`` and the wrapped sum is a multiple of 2π); returned as the
    nearest integer in ``x``'s dtype (the raw sum is :func:`charge_int_raw`).
    """
    return tf.round(charge_int_raw(x))


def charge_int_raw(x):
    """``Σ_P ⌊x_P⌉ / 2π`` without rounding (for checking that it is an integer)."""
    return tf.reduce_sum(wrap(plaquettes(x)), axis=(1, 2)) / TWO_PI


def charge_real(x):
    """``Q_R = Σ_P sin x_P / 2π`` (§3.2, the differentiable charge of Eq. 15), shape ``(batch,)``."""
    return tf.reduce_sum(tf.sin(plaquettes(x)), axis=(1, 2)) / TWO_PI


def gauge_transform(x, alpha):
    """``x_μ(n) → x_μ(n) + α(n) − α(n + μ̂)`` for a site field ``alpha`` of shape ``(batch, L, L)``.

    Plaquettes (hence the action and both charges) are invariant.
    """
    a0 = alpha - tf.roll(alpha, -1, axis=1)
    a1 = alpha - tf.roll(alpha, -1, axis=2)
    return wrap(x + tf.stack([a0, a1], axis=-1))


def tunnelling_rate(charges):
    """Eq. (6): ``mean |Q_Z,i+1 − Q_Z,i|`` along each chain.

    ``charges``: integer charges of shape ``(n_trajectories, n_chains)``; returns ``(n_chains,)``.
    """
    q = np.asarray(charges, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 2:
        raise ValueError(f"tunnelling_rate needs charges of shape (n_trajectories ≥ 2, n_chains), "
                         f"got {q.shape}")
    return np.abs(np.diff(q, axis=0)).mean(axis=0)


# ------------------------------------------------------------------------------- exact solution
def exact_plaquette_infinite(beta):
    """``⟨cos x_P⟩ = I₁(β) / I₀(β)`` on the infinite lattice (the plaquettes decouple in 2D)."""
    from scipy.special import ive

    beta = np.asarray(beta, dtype=np.float64)
    return ive(1, beta) / ive(0, beta)  # the e^{−β} scalings cancel


def exact_plaquette(beta, lattice_size, n_max=None):
    """``⟨cos x_P⟩`` on the finite ``L × L`` torus with ``V = L²`` plaquettes (character expansion)::

        Z = Σ_n I_n(β)^V,   ⟨cos x_P⟩ = Σ_n I_n^{V−1} ½(I_{n−1} + I_{n+1}) / Σ_n I_n^V

    summed over ``n ∈ [−n_max, n_max]`` in log space with SciPy's scaled Bessel functions
    (``ive``; the common ``e^{βV}`` cancels). ``beta`` may be an array.
    """
    from scipy.special import ive, logsumexp

    volume = int(lattice_size) ** 2
    if volume < 1:
        raise ValueError(f"lattice_size must be positive, got {lattice_size}")
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    n_max = n_max or int(max(30, 4 * beta.max() + 20))
    n = np.arange(-n_max - 1, n_max + 2)
    i_n = ive(n[:, None], beta[None, :])  # (2 n_max + 3, n_beta)
    log_i = np.log(i_n[1:-1])
    half_sum = 0.5 * (i_n[:-2] + i_n[2:])
    log_num = logsumexp((volume - 1) * log_i + np.log(half_sum), axis=0)
    log_den = logsumexp(volume * log_i, axis=0)
    out = np.exp(log_num - log_den)
    return out if out.size > 1 else float(out[0])


def beta_with_plaquette(plaquette):
    """The β at which the infinite-volume ``⟨cos x_P⟩`` equals ``plaquette`` (for Figure 7's
    "effective coupling" reading of a trajectory); NaN outside ``(0, 1)``."""
    from scipy.optimize import brentq

    p = float(plaquette)
    if not 0.0 < p < 1.0:
        return float("nan")
    return brentq(lambda b: exact_plaquette_infinite(b) - p, 1e-6, 1e4)
