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

import functools
import math

import numpy as np
import tensorflow as tf

TWO_PI = 2.0 * math.pi


def wrap(x):
    """Map angles to ``[−π, π)``: ``⌊x⌉ = x − 2π ⌊(x + π) / 2π⌋`` (the projection of Eq. 5)."""
    return x - TWO_PI * tf.floor((x + math.pi) / TWO_PI)


def as_dtype(value, dtype):
    """``value`` as a tensor of ``dtype`` (a Python float straight to ``dtype``: ``tf.cast`` would
    round it through float32 first)."""
    return tf.cast(value, dtype) if tf.is_tensor(value) else tf.constant(value, dtype)


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
    beta = as_dtype(beta, x.dtype)
    return beta * tf.reduce_sum(1.0 - tf.cos(plaquettes(x)), axis=(1, 2))


def action_gradient(x, beta):
    """``∂S_β/∂x_μ(n)``, shape ``(batch, L, L, 2)`` (analytic; ``dS/dx_P = β sin x_P``).

    ``x_0(n)`` enters ``x_P(n)`` with ``+`` and ``x_P(n − 1̂)`` with ``−``; ``x_1(n)`` enters
    ``x_P(n)`` with ``−`` and ``x_P(n − 0̂)`` with ``+``.
    """
    beta = tf.reshape(as_dtype(beta, x.dtype), (-1, 1, 1))
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


@functools.lru_cache(maxsize=8)
def _gauss_legendre(points):
    return np.polynomial.legendre.leggauss(points)


def _plaquette_moments(beta, n):
    """``(1/2π)∫_{−π}^{π} dφ φ^m e^{β(cos φ − 1)} e^{ikφ}`` for ``m = 0, 1, 2`` and ``k ∈ n``.

    Returns ``(a, b, c)`` of shape ``(len(n), len(beta))``: ``a_k = e^{−β} I_k(β)`` (SciPy's ``ive``),
    ``b_k = (1/π)∫_0^π φ sin(kφ) e^{β(cos φ − 1)} dφ`` (the m = 1 moment is ``i b_k``) and
    ``c_k = (1/π)∫_0^π φ² cos(kφ) e^{β(cos φ − 1)} dφ``, by Gauss–Legendre quadrature on ``[0, π]``
    (the integrands are smooth and the nodes resolve ``cos(kφ)`` for every ``k`` summed).
    """
    from scipy.special import ive

    nodes, weights = _gauss_legendre(max(400, 8 * int(np.abs(n).max()) + 200))
    phi, w = 0.5 * math.pi * (nodes + 1.0), 0.5 * math.pi * weights
    damp = np.exp(beta[None, :] * (np.cos(phi)[:, None] - 1.0))  # (nodes, betas)
    kphi = n[:, None] * phi[None, :]  # (k, nodes)
    b = (np.sin(kphi) * (w * phi)) @ damp / math.pi
    c = (np.cos(kphi) * (w * phi ** 2)) @ damp / math.pi
    return ive(n[:, None], beta[None, :]), b, c


def exact_charge_squared(beta, lattice_size, n_max=None):
    """``⟨Q_Z²⟩`` on the finite ``L × L`` torus (``V = L²`` plaquettes); ``χ_Q = ⟨Q_Z²⟩ / V``.

    On the torus the Haar measure of the links, mapped to the wrapped plaquette angles
    ``φ_P = ⌊x_P⌉ ∈ [−π, π)``, is the uniform measure on ``[−π, π)^V`` restricted to
    ``Σ_P φ_P ∈ 2πℤ`` (``Σ_P x_P = 0``), and ``Q_Z = Σ_P φ_P / 2π``. With the Poisson sum
    ``Σ_m δ(y − 2πm) = (1/2π) Σ_k e^{iky}`` the θ-vacuum partition function is::

        Z(θ) = Σ_{k∈ℤ} f(k + θ/2π)^V,   f(ν) = (1/2π) ∫_{−π}^{π} dφ e^{β cos φ + iνφ}

    (``f(k) = I_k(β)``: at θ = 0 the character expansion of :func:`exact_plaquette`). Then
    ``⟨Q_Z²⟩ = −∂²_θ log Z |_{θ=0}``; with ``a_k = f(k)``, ``f'(k) = i b_k``, ``f''(k) = −c_k``
    (:func:`_plaquette_moments`) and ``Z'(0) = 0`` (``b_{−k} = −b_k``)::

        ⟨Q_Z²⟩ = Σ_k a_k^V [V c_k / a_k − V(V−1) (b_k / a_k)²] / (4π² Σ_k a_k^V)

    For ``V ≤ 2``, ``Q_Z ≡ 0``. The sum runs over ``k ∈ [−n_max, n_max]`` (weights ``(a_k/a_0)^V``
    in log space). At large ``V`` only ``k = 0`` survives and ``⟨Q_Z²⟩ → V ⟨φ²⟩ / 4π²``, one
    plaquette's von Mises variance. ``beta`` may be an array.
    """
    if int(lattice_size) < 1:
        raise ValueError(f"lattice_size must be positive, got {lattice_size}")
    return charge_squared_of_volume(beta, int(lattice_size) ** 2, n_max)


def charge_squared_of_volume(beta, volume, n_max=None):
    """:func:`exact_charge_squared` for ``volume`` plaquettes on a torus (any ``V ≥ 1``)."""
    volume = int(volume)
    if volume < 1:
        raise ValueError(f"volume must be positive, got {volume}")
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    if volume <= 2:  # |Σ φ_P| < 2π: Q_Z ≡ 0 (and the k-sum, weighted by a_k^{V−1}, converges slowly)
        out = np.zeros_like(beta)
        return out if out.size > 1 else 0.0
    n_max = n_max or int(max(30, 4 * beta.max() + 20))
    n = np.arange(-n_max, n_max + 1)
    a, b, c = _plaquette_moments(beta, n)
    log_w = volume * (np.log(a) - np.log(a[n_max]))  # (a_k / a_0)^V, k = 0 at index n_max
    w = np.exp(log_w - log_w.max(axis=0))
    terms = volume * c / a - volume * (volume - 1) * (b / a) ** 2
    out = (w * terms).sum(axis=0) / w.sum(axis=0) / (4.0 * math.pi ** 2)
    return out if out.size > 1 else float(out[0])


def exact_charge_squared_brute_force(beta, n_plaquettes, points=400):
    """``⟨Q_Z²⟩`` for ``n_plaquettes`` ≤ 4 plaquettes by direct integration over the wrapped
    plaquette angles (the test of :func:`exact_charge_squared`, which this does not call):
    ``φ_1 … φ_{V−1}`` on a midpoint grid of ``[−π, π)``, ``φ_V = ⌊−Σφ_i⌉`` (so ``Σφ ∈ 2πℤ``),
    weight ``e^{β Σ cos φ_P}``, ``Q = Σ φ_P / 2π``. ``V = 1`` is ``Q = 0``.
    """
    volume = int(n_plaquettes)
    if not 1 <= volume <= 4:
        raise ValueError(f"brute force integrates 1 to 4 plaquettes, got {n_plaquettes}")
    if volume == 1:
        return 0.0
    grid = -math.pi + TWO_PI * (np.arange(points) + 0.5) / points
    free = np.meshgrid(*([grid] * (volume - 1)), indexing="ij")
    total = sum(free)
    last = total - TWO_PI * np.floor((total + math.pi) / TWO_PI)
    last = -last  # ⌊−Σφ⌉ (the grid is symmetric; −π maps to π only on a null set)
    phis = [*free, last]
    weight = np.exp(float(beta) * (sum(np.cos(p) for p in phis) - volume))
    q = sum(phis) / TWO_PI
    return float((weight * q ** 2).sum() / weight.sum())


def beta_with_plaquette(plaquette):
    """The β at which the infinite-volume ``⟨cos x_P⟩`` equals ``plaquette`` (for Figure 7's
    "effective coupling" reading of a trajectory); NaN outside ``(0, 1)``."""
    from scipy.optimize import brentq

    p = float(plaquette)
    if not 0.0 < p < 1.0:
        return float("nan")
    return brentq(lambda b: exact_plaquette_infinite(b) - p, 1e-6, 1e4)
