"""Plain Hamiltonian Monte Carlo for 2D U(1) (LeapfrogLayers paper, §2): the baseline.

One trajectory, for every chain at once::

    v ~ N(0, 1)                                           (momentum refresh)
    N × [ v ← v − ½ε ∂S(x);  x ← x + ε v;  v ← v − ½ε ∂S(x) ]   (Eq. 10)
    accept x* with probability min(1, exp(H − H*))        (Eq. 11),  H = S_β(x) + ½ v²

Links stay in ``[−π, π)`` (wrapped after the trajectory; the action is periodic, so wrapping
commutes with the dynamics). :class:`HMC` runs many trajectories and records the observables
the evaluation needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfphys.leapfrog import u1


def leapfrog(x, v, beta, step_size, n_steps):
    """``n_steps`` leapfrog steps of Eq. (10); returns ``(x*, v*)`` (x not wrapped).

    One force evaluation per step: ∂S at the end of a step is the one the next step starts with.
    """
    eps = u1.as_dtype(step_size, x.dtype)
    grad = u1.action_gradient(x, beta)
    for _ in range(int(n_steps)):
        v = v - 0.5 * eps * grad
        x = x + eps * v
        grad = u1.action_gradient(x, beta)
        v = v - 0.5 * eps * grad
    return x, v


def hamiltonian(x, v, beta):
    """``H = S_β(x) + ½ Σ v²`` per chain, shape ``(batch,)``."""
    return u1.wilson_action(x, beta) + 0.5 * tf.reduce_sum(tf.square(v), axis=(1, 2, 3))


def trajectory(x, beta, step_size, n_steps, seed):
    """One HMC trajectory for all chains (stateless in ``seed``, a shape-(2,) int tensor).

    Returns ``(x_next, acceptance_probability, accepted, delta_h)`` with ``delta_h = H* − H``.
    """
    seeds = tf.random.experimental.stateless_split(seed, 2)
    v = tf.random.stateless_normal(tf.shape(x), seed=seeds[0], dtype=x.dtype)
    h0 = hamiltonian(x, v, beta)
    x_star, v_star = leapfrog(x, v, beta, step_size, n_steps)
    delta_h = hamiltonian(x_star, v_star, beta) - h0
    prob = tf.exp(tf.minimum(tf.zeros_like(delta_h), -delta_h))  # Eq. (11)
    u = tf.random.stateless_uniform(tf.shape(prob), seed=seeds[1], dtype=x.dtype)
    accepted = u < prob
    x_next = tf.where(accepted[:, None, None, None], u1.wrap(x_star), x)
    return x_next, prob, accepted, delta_h


@dataclass
class Chains:
    """Per-trajectory observables of a sampling run, each ``(n_trajectories, n_chains)``."""

    charge_int: np.ndarray
    charge_real: np.ndarray
    plaquette: np.ndarray
    acceptance: np.ndarray
    wall_s: float  #: wall time of the measured trajectories (after warm-up/compilation)
    cpu_s: float   #: process CPU time of the same
    x: np.ndarray  #: the final links, ``(n_chains, L, L, 2)``

    @property
    def n_trajectories(self):
        return self.charge_int.shape[0]


class HMC:
    """Plain HMC on ``n_chains`` independent chains at coupling ``beta``.

    Args:
        beta: the coupling β of Eq. (4).
        step_size: leapfrog step ε.
        n_steps: leapfrog steps per trajectory N (trajectory length τ = N ε).
        dtype: ``tf.float32`` (default) or ``tf.float64``.
    """

    def __init__(self, beta, step_size, n_steps, dtype=tf.float32):
        self.beta, self.step_size = float(beta), float(step_size)
        self.n_steps, self.dtype = int(n_steps), dtype

        @tf.function(reduce_retracing=True)
        def _step(x, beta, seed):  # β is an input: one graph for a whole annealing ramp
            x, prob, _, _ = trajectory(x, beta, self.step_size, self.n_steps, seed)
            return x, prob, u1.charge_int(x), u1.charge_real(x), u1.average_plaquette(x)

        self._step = _step

    def run(self, x, n_trajectories, seed=0, progress=False, desc="HMC"):
        """Run ``n_trajectories`` trajectories from links ``x`` ``(n_chains, L, L, 2)``."""
        from tqdm.auto import tqdm

        x = tf.convert_to_tensor(x, self.dtype)
        base = tf.constant([int(seed), 12345], tf.int64)
        beta = tf.constant(self.beta, self.dtype)
        rec = {k: [] for k in ("prob", "qz", "qr", "plaq")}
        self._step(x, beta, base)  # compile outside the timed region
        wall, cpu = time.perf_counter(), time.process_time()
        for i in tqdm(range(int(n_trajectories)), desc=desc, disable=not progress, leave=False):
            x, prob, qz, qr, plaq = self._step(x, beta, base + tf.constant([0, 1], tf.int64) * (i + 1))
            for key, val in zip(rec, (prob, qz, qr, plaq)):
                rec[key].append(val.numpy())
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return Chains(np.array(rec["qz"]), np.array(rec["qr"]), np.array(rec["plaq"]),
                      np.array(rec["prob"]), wall, cpu, x.numpy())

    def thermalise(self, x, n_trajectories, seed=0, beta_start=2.0):
        """``n_trajectories`` unrecorded trajectories; returns the final links.

        The first half ramps β linearly from ``min(beta_start, β)`` up to β, the second half runs
        at β: from a hot start, vortex pairs annihilate and the charge distribution settles while
        tunnelling is still easy (at large β, HMC from a hot start relaxes the plaquette slowly
        and keeps the hot start's charges).
        """
        x = tf.convert_to_tensor(x, self.dtype)
        n = int(n_trajectories)
        ramp = np.linspace(min(float(beta_start), self.beta), self.beta, n // 2)
        betas = np.concatenate([ramp, np.full(n - n // 2, self.beta)])
        base = tf.constant([int(seed) + 7919, 54321], tf.int64)
        for i, beta in enumerate(betas):
            x = self._step(x, tf.constant(beta, self.dtype), base + tf.constant([0, 1], tf.int64) * i)[0]
        return x.numpy()
