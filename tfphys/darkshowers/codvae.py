"""Categorical CoDVAE — Anzalone et al. 2024, §4.5 (Eqs. 2–3) and the KL scores of §4.6.

CoDAE with variational convolutional latents:

* ``f_R`` ends in two 1×1 heads on its last residual block: logits ``α_R`` of shape
  ``(batch, 5, 4, C)`` and a temperature ``τ_R = softplus(·) + τ0`` of shape ``(batch, 5, 4, 1)``
  (τ0 = 1, "to avoid gradient instabilities as τ_R → 0").
* ``Z ~ RelaxedOneHotCategorical(τ_R, α_R)`` per spatial position (the C channels are the
  categories), sampled with the reparameterisation trick while training.
* Prior (Eq. 2): ``p(Z) = (1/N) Σ_i Cat(log 1/C, τ_i)``, ``τ_i ~ U(0.1, 1)`` drawn once per model.
* ``KL(q‖p)`` by Monte Carlo with M = 10 samples (Eq. 3), summed over positions, added to the loss.
* Decoder: CoDAE's conditional decoder ``D(Z | Z_m)``; each output pixel is an independent
  Bernoulli whose probability the model outputs. Loss ``−log p(x|z) + KL`` (the first term is the
  summed BCE). :func:`reconstruct` gives the Bernoulli ``mode`` (sharp, 0/1) or ``mean``.

Densities are TFP distributions (``ExpRelaxedOneHotCategorical``, i.e. the log of the Gumbel-
softmax sample: numerically stable, and a KL is invariant under that bijection) used inside a
Keras 3 layer — ``tfp.layers`` do not work with Keras 3.

Inference (``training=False``) is deterministic — ``Z = softmax(α_R / τ_R)``, the relaxed sample
with zero Gumbel noise — so the model exports with builtin TFLite ops only.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfphys.darkshowers.codae import INPUT_SHAPE, decoder, mask_encoder, residual_stages


def _tfd():
    import tensorflow_probability as tfp

    return tfp.distributions


@keras.saving.register_keras_serializable(package="tfphys")
class GumbelSoftmaxLatent(keras.layers.Layer):
    """Relaxed-categorical latent with a Gumbel-softmax mixture prior (CoDVAE §4.5).

    Training: samples ``Z ~ RelaxedOneHotCategorical(τ, α)`` and adds the Monte-Carlo estimate
    (Eq. 3) ``KL = (1/M) Σ_m [log q(z_m) − log p(z_m)]`` (summed over positions, averaged over the
    batch) to the model's losses. Inference: ``Z = softmax(α / τ)``.

    Args:
        prior_temperatures: the N temperatures ``τ_i`` of the uniform prior mixture (Eq. 2).
        kl_samples: M (paper: 10).

    Input: ``[logits (batch, H, W, C), temperature (batch, H, W, 1)]``.
    Output: ``Z`` of shape ``(batch, H, W, C)`` on the simplex.
    """

    def __init__(self, prior_temperatures: Sequence[float], kl_samples: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.prior_temperatures = [float(t) for t in prior_temperatures]
        self.kl_samples = int(kl_samples)
        if not self.prior_temperatures or min(self.prior_temperatures) <= 0 or self.kl_samples < 1:
            raise ValueError(f"need positive prior temperatures and kl_samples ≥ 1, got "
                             f"{prior_temperatures}, {kl_samples}")

    def call(self, inputs, training=None):
        logits, temperature = inputs
        if not training:
            return ops.softmax(logits / temperature, axis=-1)
        q = posterior(logits, temperature)
        log_z = q.sample(self.kl_samples)  # (M, batch, H, W, C)
        kl = tf.reduce_mean(q.log_prob(log_z) - prior_log_prob(log_z, self.prior_temperatures), axis=0)
        self.add_loss(tf.reduce_mean(tf.reduce_sum(kl, axis=[1, 2])))
        return tf.exp(log_z[0])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(prior_temperatures=self.prior_temperatures, kl_samples=self.kl_samples)
        return config


def posterior(logits, temperature):
    """``q(log Z | x)``: ExpRelaxedOneHotCategorical per position; batch shape ``(batch, H, W)``."""
    return _tfd().ExpRelaxedOneHotCategorical(tf.squeeze(temperature, -1), logits=logits)


def prior_log_prob(log_z, prior_temperatures):
    """Eq. (2): ``log p(log z) = logsumexp_i log Cat(log 1/C, τ_i)(log z) − log N`` for samples
    ``log_z`` of shape ``(..., C)``; returns shape ``(...)``."""
    tau = tf.constant(prior_temperatures, log_z.dtype)
    channels = log_z.shape[-1]
    extra = len(log_z.shape) - 1
    components = _tfd().ExpRelaxedOneHotCategorical(
        tf.reshape(tau, [-1] + [1] * extra), logits=tf.zeros([channels], log_z.dtype))
    log_p = components.log_prob(log_z[None])  # (N, ...)
    return tf.reduce_logsumexp(log_p, axis=0) - np.log(len(prior_temperatures))


def kl_scores(logits, temperature, prior_temperatures, *, samples: int = 10, seed: int = 0):
    """Per-event KL scores of §4.6 by Monte Carlo with ``samples`` draws, summed over positions.

    * ``KL-R = KL(q‖p)`` (reverse, mode-seeking): samples from the posterior ``q``.
    * ``KL-F = KL(p‖q)`` (forward, mass-covering): samples from the prior mixture ``p``.

    ``logits (n, H, W, C)``, ``temperature (n, H, W, 1)`` as returned by ``f_R``. Returns
    ``{"KL-R": (n,), "KL-F": (n,)}`` (numpy).
    """
    tfd = _tfd()
    logits = tf.convert_to_tensor(logits, tf.float32)
    q = posterior(logits, tf.convert_to_tensor(temperature, tf.float32))
    z_q = q.sample(samples, seed=seed)
    kl_r = tf.reduce_mean(q.log_prob(z_q) - prior_log_prob(z_q, prior_temperatures), axis=0)
    # Sampling the uniform mixture: a component per draw and position, then its sample.
    tau = tf.constant(prior_temperatures, tf.float32)
    shape = [samples, *logits.shape[:-1]]
    pick = tf.random.stateless_uniform(shape, [seed, 1], maxval=len(prior_temperatures), dtype=tf.int32)
    p_draw = tfd.ExpRelaxedOneHotCategorical(tf.gather(tau, pick), logits=tf.zeros_like(logits)[None])
    z = p_draw.sample(seed=seed + 1)
    kl_f = tf.reduce_mean(prior_log_prob(z, prior_temperatures) - q.log_prob(z), axis=0)
    return {"KL-R": tf.reduce_sum(kl_r, axis=[1, 2]).numpy().astype(np.float64),
            "KL-F": tf.reduce_sum(kl_f, axis=[1, 2]).numpy().astype(np.float64)}


def variational_encoder(
    filters: Sequence[int] = (64, 128, 128, 256),
    groups: int = 4,
    categories: int = 64,
    base_temperature: float = 1.0,
    slope: float = 0.2,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """``f_R`` of the CoDVAE: ``(batch, 72, 58, 1)`` → ``[α_R (batch, 5, 4, C), τ_R (batch, 5, 4, 1)]``."""
    inputs = keras.Input(input_shape, name="mask")
    x = residual_stages(inputs, filters, groups, slope)
    logits = keras.layers.Conv2D(categories, 1, kernel_initializer="he_uniform", name="logits")(x)
    tau = keras.layers.Conv2D(1, 1, activation="softplus", kernel_initializer="he_uniform",
                              bias_initializer=keras.initializers.Constant(0.0), name="tau_head")(x)
    # τ_R = softplus(·) + τ0 as a bias-free shift: a Rescaling layer (builtin ops, serialisable).
    tau = keras.layers.Rescaling(1.0, offset=base_temperature, name="temperature")(tau)
    return keras.Model(inputs, [logits, tau], name="f_R")


def build_codvae(
    encoder_filters: Sequence[int] = (64, 128, 128, 256),
    encoder_groups: int = 4,
    latent_channels: int = 64,
    mask_filters: Sequence[int] = (64, 128, 128, 256),
    mask_groups: int = 2,
    latent_dim: int = 2,
    decoder_filters: Sequence[int] = (256, 128, 128, 64),
    decoder_groups: int = 4,
    conditioning_kernel: int = 3,
    leaky_slope: float = 0.2,
    output_bias: float = -1.0,
    base_temperature: float = 1.0,
    prior_components: int = 10,
    kl_samples: int = 10,
    name: str = "codvae",
    seed: int = 0,
) -> keras.Model:
    """The Categorical CoDVAE: ``p(Î_m) = Bern(D(Z | f_m(I_m)))``, ``Z ~ Cat(f_R(I_m))``.

    The prior temperatures ``τ_i ~ U(0.1, 1)`` (Eq. 2) are drawn from ``seed`` (the run's
    ``[train] seed``, passed by the trainer) and stored in the latent layer's config, so a saved
    model carries its prior. Sub-models: ``f_R``, ``f_m``,
    ``latent`` (the layer) and ``decoder``.
    """
    taus = np.random.default_rng(seed).uniform(0.1, 1.0, prior_components)
    f_r = variational_encoder(encoder_filters, encoder_groups, latent_channels, base_temperature, leaky_slope)
    f_m = mask_encoder(mask_filters, mask_groups, latent_dim, leaky_slope)
    dec = decoder(
        f_r.output[0].shape[1:], decoder_filters, decoder_groups, leaky_slope,
        latent_dim=latent_dim, conditioning_kernel=conditioning_kernel, output_bias=output_bias,
    )
    inputs = keras.Input(INPUT_SHAPE, name="mask")
    logits, tau = f_r(inputs)
    z = GumbelSoftmaxLatent(taus.tolist(), kl_samples, name="latent")([logits, tau])
    return keras.Model(inputs, dec([z, f_m(inputs)]), name=name)


def reconstruct(probs, kind: str = "mode") -> np.ndarray:
    """The Bernoulli decoder's reconstruction from its pixel probabilities: ``"mode"`` (1 where
    p > ½: sharp masks) or ``"mean"`` (p itself: smooth values)."""
    dist = _tfd().Bernoulli(probs=np.asarray(probs, np.float32), dtype=tf.float32)
    if kind == "mode":
        return dist.mode().numpy()
    if kind == "mean":
        return dist.mean().numpy()
    raise ValueError(f"kind must be 'mode' or 'mean', got {kind!r}")
