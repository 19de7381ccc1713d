"""2D U(1): symmetries and exact results of the lattice code, the HMC baseline, τ_int."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tfphys.leapfrog import autocorr, hmc, u1


def _instanton(size, charge):
    """Links whose plaquettes all equal 2πQ/V after wrapping: the charge-Q constant-field configuration."""
    n0, n1 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    volume = size * size
    x = np.zeros((1, size, size, 2))
    x[0, :, :, 1] = 2 * math.pi * charge * n0 / volume
    x[0, size - 1, :, 0] = -2 * math.pi * charge * n1[size - 1] / size  # the twist closing the torus
    return tf.constant(u1.wrap(tf.constant(x)).numpy())


def test_action_and_charges_are_gauge_invariant():
    x = u1.random_links((3, 6, 6, 2), seed=1, dtype=tf.float64)
    alpha = tf.random.stateless_uniform((3, 6, 6), seed=[2, 0], minval=-4.0, maxval=4.0, dtype=tf.float64)
    y = u1.gauge_transform(x, alpha)
    assert np.abs(y.numpy() - x.numpy()).max() > 1.0  # the links did change
    np.testing.assert_allclose(u1.wilson_action(y, 3.0), u1.wilson_action(x, 3.0), rtol=1e-12)
    np.testing.assert_allclose(u1.charge_real(y), u1.charge_real(x), atol=1e-12)
    np.testing.assert_array_equal(u1.charge_int(y), u1.charge_int(x))


def test_integer_charge_is_an_integer_on_any_configuration():
    x = u1.random_links((64, 5, 5, 2), seed=3)
    raw = u1.charge_int_raw(x).numpy()
    np.testing.assert_allclose(raw, np.round(raw), atol=1e-4)
    assert len(set(np.round(raw))) > 2  # hot configurations carry various charges


@pytest.mark.parametrize("charge", [-2, 1, 3])
def test_constant_field_configuration_has_the_charge_and_action_it_was_built_with(charge):
    size, beta = 8, 2.5
    x = _instanton(size, charge)
    volume, angle = size * size, 2 * math.pi * charge / (size * size)
    assert float(u1.charge_int(x)[0]) == charge
    np.testing.assert_allclose(u1.charge_real(x), volume * math.sin(angle) / (2 * math.pi), rtol=1e-10)
    np.testing.assert_allclose(u1.wilson_action(x, beta), beta * volume * (1 - math.cos(angle)), rtol=1e-9)


def test_action_gradient_equals_autodiff():
    x = u1.random_links((2, 4, 4, 2), seed=4, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(u1.wilson_action(x, 1.7))
    np.testing.assert_allclose(u1.action_gradient(x, 1.7), tape.gradient(s, x), atol=1e-12)


def test_exact_plaquette_limits():
    beta = np.array([0.5, 2.0, 6.0])
    # one plaquette on a 1×1 torus is identically 0, so ⟨cos x_P⟩ = 1
    np.testing.assert_allclose(u1.exact_plaquette(beta, 1), 1.0, rtol=1e-12)
    # large volume → the infinite-volume ratio I₁/I₀; small volume differs
    np.testing.assert_allclose(u1.exact_plaquette(beta, 64), u1.exact_plaquette_infinite(beta), rtol=1e-10)
    assert u1.exact_plaquette(6.0, 4) - u1.exact_plaquette_infinite(6.0) > 1e-3
    assert abs(u1.beta_with_plaquette(u1.exact_plaquette_infinite(3.0)) - 3.0) < 1e-8


@pytest.mark.parametrize("beta", [0.5, 2.0, 6.0])
@pytest.mark.parametrize("volume", [1, 2, 3, 4])
def test_exact_charge_squared_equals_the_brute_force_integral(volume, beta):
    """The θ-vacuum formula against direct integration over V − 1 free wrapped plaquettes."""
    exact = u1.charge_squared_of_volume(beta, volume)
    brute = u1.exact_charge_squared_brute_force(beta, volume, points={1: 1, 2: 400, 3: 1600, 4: 200}[volume])
    if volume <= 2:  # one or two plaquettes in [−π, π) cannot sum to a non-zero multiple of 2π
        assert brute == 0.0 and exact == 0.0
    else:  # the midpoint rule's error is O(1/points) (the wrap is discontinuous)
        assert exact > 0 and abs(brute - exact) < 2e-3 * exact, (brute, exact)


def test_exact_charge_squared_against_links_sampled_on_a_2x2_torus():
    """Independent of the plaquette-measure argument: uniform links on the 2×2 torus, reweighted by
    e^{−S}, through the lattice code's own Q_Z."""
    beta, n = 0.7, 400_000
    x = u1.random_links((n, 2, 2, 2), seed=11, dtype=tf.float64)
    q2 = u1.charge_int(x).numpy() ** 2
    w = np.exp(-u1.wilson_action(x, beta).numpy())
    w /= w.sum()
    mean = float((w * q2).sum())
    err = float(np.sqrt((w ** 2 * (q2 - mean) ** 2).sum()))  # delta method for a weighted mean
    exact = u1.exact_charge_squared(beta, 2)
    assert abs(mean - exact) < 3 * err and err < 0.02 * exact, (mean, err, exact)


def test_exact_charge_squared_limits():
    beta = np.array([2.0, 6.0])
    # large volume: only the k = 0 term, V × one plaquette's ⟨φ²⟩ / 4π² (von Mises, on [−π, π))
    phi = np.linspace(-math.pi, math.pi, 200_001)
    for b, chi in zip(beta, u1.exact_charge_squared(beta, 32) / 32 ** 2):
        dens = np.exp(b * (np.cos(phi) - 1))
        assert chi == pytest.approx(np.trapezoid(phi ** 2 * dens, phi) / np.trapezoid(dens, phi)
                                    / (4 * math.pi ** 2), rel=1e-6)
    with pytest.raises(ValueError):
        u1.exact_charge_squared(2.0, 0)


def test_tunnelling_rate_is_eq6():
    q = np.array([[0, 1], [1, 1], [-1, 1]])
    np.testing.assert_allclose(u1.tunnelling_rate(q), [1.5, 0.0])


def test_hmc_energy_error_shrinks_as_step_size_squared():
    x = hmc.HMC(2.0, 0.1, 10, dtype=tf.float64).thermalise(
        u1.random_links((32, 6, 6, 2), seed=5, dtype=tf.float64), 20)
    seed = tf.constant([1, 2], tf.int64)
    errors = []
    for eps, n in ((0.2, 5), (0.1, 10), (0.05, 20)):  # fixed trajectory length 1
        _, _, _, delta_h = hmc.trajectory(x, 2.0, eps, n, seed)
        errors.append(np.abs(delta_h.numpy()).mean())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.3) & (ratios < 4.7)), ratios


def test_hmc_reproduces_the_exact_finite_volume_plaquette():
    beta, size = 3.0, 4
    sampler = hmc.HMC(beta, 0.15, 8)
    x = sampler.thermalise(u1.random_links((64, size, size, 2), seed=6), 50)
    chains = sampler.run(x, 200, seed=7)
    per_chain = chains.plaquette.mean(axis=0)
    mean, err = per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(len(per_chain))
    exact = u1.exact_plaquette(beta, size)
    assert abs(mean - exact) < 3 * err, (mean, err, exact)
    assert err < 5e-3  # the test has teeth: exact(L=4) differs from I₁/I₀ by 6e-3
    assert chains.acceptance.mean() > 0.7
    q2 = (chains.charge_int ** 2).mean(axis=0)  # and the topological susceptibility
    q2_mean, q2_err, q2_exact = q2.mean(), q2.std(ddof=1) / np.sqrt(len(q2)), u1.exact_charge_squared(beta, size)
    assert abs(q2_mean - q2_exact) < 3 * q2_err and q2_err < 0.2 * q2_exact, (q2_mean, q2_err, q2_exact)


def test_autocorrelation_time_of_an_ar1_process():
    rng = np.random.default_rng(0)
    phi, n = 0.8, 20_000
    x = np.zeros((n, 8))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal(size=8)
    result = autocorr.integrated_time(x)
    exact = (1 + phi) / (1 - phi)
    assert result.reliable and abs(result.tau - exact) < max(4 * result.err, 0.1 * exact)
    assert result.effective_samples == pytest.approx(n * 8 / result.tau)


def test_autocorrelation_time_refuses_untrustworthy_estimates():
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(size=(200, 4)), axis=0)  # τ ~ run length
    with pytest.raises(autocorr.UnreliableEstimate) as info:
        autocorr.integrated_time(walk)
    assert info.value.estimate > 4
    frozen = np.zeros((300, 4))
    with pytest.raises(autocorr.UnreliableEstimate, match="never changed"):
        autocorr.integrated_time(frozen)
    assert not autocorr.integrated_time(walk, strict=False).reliable
