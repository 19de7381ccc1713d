"""Categorical CoDVAE (CoDAE paper §4.5): the latent layer, the Monte-Carlo KL, the Bernoulli decoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.convert import convert, ops_used
from tfphys.darkshowers.codvae import (
    GumbelSoftmaxLatent,
    build_codvae,
    kl_scores,
    posterior,
    prior_log_prob,
    reconstruct,
)
from tfphys.darkshowers.losses import SummedBinaryCrossentropy

TINY = dict(encoder_filters=[8] * 4, mask_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4)


def _masks(n=8, seed=0):
    return (np.random.default_rng(seed).random((n, 72, 58, 1)) < 0.05).astype("float32")


def test_paper_sized_codvae_has_codae_sizes_plus_the_temperature_head():
    model = build_codvae()
    sizes = {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}
    # f_R: CoDAE's 612,032 + the 1×1 temperature head on 256 channels (257 parameters).
    assert sizes == {"f_R": 612_032 + 257, "f_m": 270_594, "decoder": 763_841}
    taus = model.get_layer("latent").prior_temperatures
    # Eq. 2's τ_i ~ U(0.1, 1), drawn from seed = 0 (the default; the trainer passes [train] seed)
    assert taus == np.random.default_rng(0).uniform(0.1, 1.0, 10).tolist()


def test_kl_is_zero_when_posterior_equals_the_prior():
    # A one-component prior Cat(log 1/C, τ) and a posterior with uniform logits at the same τ:
    # log q(z) − log p(z) vanishes sample by sample, both ways (Eq. 3's estimate is exactly 0).
    tau = 0.37
    logits, temperature = np.zeros((3, 5, 4, 6), "float32"), np.full((3, 5, 4, 1), tau, "float32")
    kl = kl_scores(logits, temperature, [tau], samples=10)
    assert np.allclose(kl["KL-R"], 0, atol=1e-3) and np.allclose(kl["KL-F"], 0, atol=1e-3)
    layer = GumbelSoftmaxLatent([tau], kl_samples=10)
    layer([tf.constant(logits), tf.constant(temperature)], training=True)
    assert abs(float(layer.losses[0])) < 1e-3


def test_kl_grows_as_the_posterior_sharpens_and_is_positive():
    logits = np.zeros((2, 5, 4, 6), "float32")
    logits[1, ..., 0] = 8.0  # event 1 is sure of category 0 everywhere
    kl = kl_scores(logits, np.ones((2, 5, 4, 1), "float32"), [0.2, 0.5, 0.9], samples=50)
    assert kl["KL-R"][1] > kl["KL-R"][0] and kl["KL-F"][1] > kl["KL-F"][0]
    assert kl["KL-R"][1] > 0 and kl["KL-F"][1] > 0


def test_prior_is_a_normalised_uniform_mixture():
    # log p = logsumexp_i log p_i − log N: with N identical components it equals one component.
    q = posterior(tf.zeros((1, 1, 1, 3)), tf.fill((1, 1, 1, 1), 0.5))
    z = q.sample(4, seed=1)
    assert np.allclose(prior_log_prob(z, [0.5, 0.5, 0.5]), q.log_prob(z), atol=1e-5)


def test_training_adds_the_kl_and_inference_is_deterministic(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_codvae(**TINY)
    x = _masks()
    model(x, training=True)
    assert len(model.losses) == 1 and np.isfinite(float(model.losses[0]))
    sample_a, sample_b = model(x, training=True), model(x, training=True)
    assert not np.allclose(sample_a, sample_b)  # a Gumbel-softmax draw each time
    model.compile(optimizer=keras.optimizers.AdamW(3e-3, weight_decay=0.1, clipnorm=1.0),
                  loss=SummedBinaryCrossentropy())
    history = model.fit(x, x, epochs=4, batch_size=8, verbose=0).history["loss"]
    assert history[-1] < history[0]
    y = model.predict(x, verbose=0)
    assert np.array_equal(y, model.predict(x, verbose=0))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.array_equal(again.predict(x, verbose=0), y)
    assert again.get_layer("latent").prior_temperatures == model.get_layer("latent").prior_temperatures


def test_bernoulli_mode_and_mean():
    p = np.array([[0.2, 0.5, 0.51, 0.9]], "float32")
    assert reconstruct(p, "mode").tolist() == [[0, 0, 1, 1]]
    assert np.allclose(reconstruct(p, "mean"), p)
    with pytest.raises(ValueError, match="kind must be 'mode' or 'mean', got 'sample'"):
        reconstruct(p, "sample")


def test_codvae_exports_its_deterministic_path_with_builtin_ops():
    ops = ops_used(convert(build_codvae(**TINY), "float32"))
    assert "SOFTMAX" in ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    assert not [op for op in ops if "RANDOM" in op or "MULTINOMIAL" in op]
