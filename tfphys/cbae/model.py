"""CBAE — the constrained bottleneck autoencoder of Jesús-Valls, Lux & Sánchez, "Data-driven detector
signal characterization with constrained bottleneck autoencoders" (§2.1–2.2, Figure 1).

An autoencoder whose bottleneck has exactly as many units as the system has physical parameters,
and is trained to *be* those parameters::

    s ──encoder f̂⁻¹──► p′ (2 units: θ′, η′) ──decoder f̂──► s′        output [p′ ‖ s′]
    loss = MSE(s, s′) + MSE(p, p′)                                    (Figure 1)

One trained model does three jobs (§4): the encoder alone estimates the parameters of a waveform
(:func:`estimate`), the decoder alone generates the noiseless response of given parameters
(:func:`generate`), and the composition denoises (:func:`denoise`, ``f̂(f̂⁻¹(s))``).

* encoder ``f̂⁻¹``: ``(batch, 1024)`` → reshape ``(batch, 1024, 1)`` → per entry of
  ``encoder_filters`` a Conv1D (stride 2, 'same'; with ``encoder_batch_norm`` followed by
  BatchNormalization before its activation) → flatten → dense layers ``encoder_units`` →
  Dense(2), linear: ``p′``.
* decoder ``f̂``: ``(batch, 2)`` → Fourier features ``[p, sin(π2ʲp), cos(π2ʲp)]``, ``j <
  decoder_fourier_octaves`` → ×``decoder_input_scale`` → dense layers ``decoder_units`` →
  Dense((L + 2m)·C), reshape ``(L + 2m, C)`` → per entry of ``decoder_filters`` an
  UpSampling1D(2) + Conv1D ('same') → Conv1D(1), linear → crop ``m·2ⁿ`` samples at each end →
  ``(batch, 1024)``; with ``decoder_filters = []`` the last dense layer has 1024 linear units.

Three conditioning choices are ours, not the paper's (which gives the block structure —
convolutions for neighbouring-sample patterns, dense layers for the flexibility the constrained
bottleneck needs — but no widths), each measured in ``tools/README.md``:

* **Fourier features of p** (Tancik et al. 2020) and **p × 10**: the reflected pulse moves by 7
  x-units over η ∈ [0, 1], so f̂ must change sharply with p; a plain MLP on p learns that slowly
  and worst of all at the edges of the parameter square, where the data are one-sided. Trained
  on the *true* p alone, the decoder's worst error on the (θ, η) grid fell from 3.9 % to 2.3 %
  with the features.
* **BatchNorm in the encoder**: the decoder learns E[s | p′], so its output at the edges of the
  square is blurred by the encoder's resolution; batch norm brought σ(η′ − η) from 0.017 to
  0.012 in the same 4 epochs (the Cramér–Rao bound is ≈ 0.008 at the centre).
* **A cropped margin** (``decoder_margin``): the decoder's convolutions run on a sequence 2m
  samples longer than needed, so their zero padding, which cost ~4 % at the window's first and
  last ~30 samples, falls outside the waveform.

Widths were chosen to train the paper's 4 epochs × 40k in a few minutes on two CPU cores
(``tools/bench_cbae.py``): narrow kernel-3 convolutions (they hold most of the cost) and wide
decoder dense layers (the worst generation error fell with their width).
All layers are stock Keras layers or :class:`tfphys.layers.FourierFeatures`: the model loads with
``keras.saving.load_model(path, safe_mode=True)`` and converts to builtin TFLite ops; the nested
models ``"encoder"`` and ``"decoder"`` are exported and timed alone by ``tfphys-export``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfphys.cbae.waveforms import N_PARAMS, N_SAMPLES, PARAM_NAMES
from tfphys.errors import TfphysError
from tfphys.layers import FourierFeatures


def encoder(filters: Sequence[int] = (16, 32, 32, 64), units: Sequence[int] = (128, 64),
            kernel_size: int = 5, activation: str = "swish", bottleneck: int = N_PARAMS,
            n_samples: int = N_SAMPLES, batch_norm: bool = False) -> keras.Model:
    """``f̂⁻¹``: waveforms ``(batch, n_samples)`` → parameter estimates ``p′`` ``(batch, bottleneck)``.

    ``batch_norm``: BatchNormalization between each convolution and its activation.
    """
    s = keras.Input((n_samples,), name="waveform")
    x = keras.layers.Reshape((n_samples, 1), name="as_channels")(s)
    for i, f in enumerate(filters):
        x = keras.layers.Conv1D(f, kernel_size, strides=2, padding="same", use_bias=not batch_norm,
                                activation=None if batch_norm else activation, name=f"conv{i}")(x)
        if batch_norm:   # the norm's shift replaces the conv's bias
            x = keras.layers.BatchNormalization(name=f"norm{i}")(x)
            x = keras.layers.Activation(activation, name=f"act{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, u in enumerate(units):
        x = keras.layers.Dense(u, activation=activation, name=f"dense{i}")(x)
    p = keras.layers.Dense(bottleneck, name="p_prime")(x)   # linear: θ′, η′ live on the real line
    return keras.Model(s, p, name="encoder")


def decoder(units: Sequence[int] = (64, 128, 256), filters: Sequence[int] = (), kernel_size: int = 5,
            activation: str = "swish", bottleneck: int = N_PARAMS, input_scale: float = 1.0,
            n_samples: int = N_SAMPLES, margin: int = 0, fourier_octaves: int = 0) -> keras.Model:
    """``f̂``: parameters ``(batch, bottleneck)`` → noiseless waveforms ``(batch, n_samples)``.

    ``margin`` (convolutional decoder only): the sequence is ``margin`` samples longer at each end at
    the decoder's coarsest resolution, and the ``margin · 2^len(filters)`` extra samples at each end
    are cropped after the last convolution, so the convolutions' zero padding falls outside the
    waveform instead of on its first and last ~30 samples.
    """
    if margin < 0:
        raise TfphysError(f"[model] decoder_margin must be ≥ 0, got {margin}")
    if fourier_octaves < 0:
        raise TfphysError(f"[model] decoder_fourier_octaves must be ≥ 0, got {fourier_octaves}")
    p = keras.Input((bottleneck,), name="p")
    x = FourierFeatures(fourier_octaves, name="fourier_p")(p) if fourier_octaves else p
    x = keras.layers.Rescaling(input_scale, name="scale_p")(x) if input_scale != 1.0 else x
    for i, u in enumerate(units):
        x = keras.layers.Dense(u, activation=activation, name=f"dense{i}")(x)
    if filters:
        length = n_samples // 2 ** len(filters)
        if length * 2 ** len(filters) != n_samples:
            raise TfphysError(f"{n_samples} samples cannot be reached by {len(filters)} ×2 up-samplings")
        x = keras.layers.Dense((length + 2 * margin) * filters[0], activation=activation, name="to_sequence")(x)
        x = keras.layers.Reshape((length + 2 * margin, filters[0]), name="sequence")(x)
        for i, f in enumerate(filters):
            x = keras.layers.UpSampling1D(2, name=f"up{i}")(x)
            x = keras.layers.Conv1D(f, kernel_size, padding="same", activation=activation,
                                    name=f"conv{i}")(x)
        x = keras.layers.Conv1D(1, kernel_size, padding="same", name="to_signal")(x)
        if margin:
            crop = margin * 2 ** len(filters)
            x = keras.layers.Cropping1D((crop, crop), name="crop_margin")(x)
        s = keras.layers.Reshape((n_samples,), name="s_prime")(x)
    else:
        s = keras.layers.Dense(n_samples, name="s_prime")(x)
    return keras.Model(p, s, name="decoder")


def build_cbae(
    bottleneck: int = N_PARAMS,
    encoder_filters: Sequence[int] = (8, 16, 32, 32),
    encoder_units: Sequence[int] = (128, 64),
    decoder_units: Sequence[int] = (1024, 1024),
    decoder_filters: Sequence[int] = (32, 16, 16, 8),
    kernel_size: int = 5,
    activation: str = "swish",
    decoder_input_scale: float = 10.0,
    encoder_batch_norm: bool = False,
    decoder_margin: int = 0,
    decoder_fourier_octaves: int = 0,
    encoder_kernel_size: int | None = None,
    name: str = "cbae",
) -> keras.Model:
    """The CBAE: ``s → [p′ ‖ s′]`` with ``p′ = f̂⁻¹(s)`` and ``s′ = f̂(p′)`` (Figure 1).

    One output of shape ``(batch, 2 + 1024)``: columns 0–1 are ``p′`` (θ′, η′), the rest ``s′``
    (:func:`split_output`). One tensor rather than two outputs because the TFLite converter does not
    keep a multi-output model's output order, and the export validation compares the first
    output of each side. ``model.get_layer("encoder")`` / ``"decoder"`` are ``f̂⁻¹`` / ``f̂``.
    ``bottleneck`` is there to be refused: the constraint *is* that its width equals dim(p) = 2.
    The options added later (``encoder_batch_norm``, ``decoder_margin``, ``decoder_fourier_octaves``,
    ``encoder_kernel_size``) default to off, so a config written before them builds the same
    model; ``models/cbae.toml`` turns them on.
    """
    if int(bottleneck) != N_PARAMS:
        raise TfphysError(
            f"[model] bottleneck = {bottleneck}: a constrained bottleneck autoencoder's bottleneck "
            f"must have exactly dim(p) = {N_PARAMS} units ({', '.join(PARAM_NAMES)}), one per "
            f"physical parameter (paper §2.1)")
    if not encoder_filters and not encoder_units:
        raise TfphysError("[model] the encoder needs at least one of encoder_filters, encoder_units")
    enc_kernel = kernel_size if encoder_kernel_size is None else encoder_kernel_size
    for key, k in (("kernel_size", kernel_size), ("encoder_kernel_size", enc_kernel)):
        if int(k) < 1:
            raise TfphysError(f"[model] {key} must be a positive number of samples, got {k}")
    enc = encoder(encoder_filters, encoder_units, enc_kernel, activation, N_PARAMS, batch_norm=encoder_batch_norm)
    dec = decoder(decoder_units, decoder_filters, kernel_size, activation, N_PARAMS, decoder_input_scale,
                  margin=decoder_margin, fourier_octaves=decoder_fourier_octaves)
    s = keras.Input((N_SAMPLES,), name="waveform")
    p_prime = enc(s)
    outputs = keras.layers.Concatenate(name="p_prime_s_prime")([p_prime, dec(p_prime)])
    return keras.Model(s, outputs, name=name)


def split_output(y):
    """``(batch, 2 + 1024)`` → ``(p, s)``: works on model outputs and on training targets alike."""
    return y[:, :N_PARAMS], y[:, N_PARAMS:]


# --------------------------------------------------------------------------- the loss (Figure 1)
@keras.saving.register_keras_serializable(package="tfphys")
def signal_loss(y_true, y_pred):
    """MSE(s, s′) per waveform: the reconstruction term of Figure 1's loss."""
    return keras.ops.mean(keras.ops.square(y_true[:, N_PARAMS:] - y_pred[:, N_PARAMS:]), axis=-1)


@keras.saving.register_keras_serializable(package="tfphys")
def params_loss(y_true, y_pred):
    """MSE(p, p′) per waveform: the bottleneck-constraint term of Figure 1's loss."""
    return keras.ops.mean(keras.ops.square(y_true[:, :N_PARAMS] - y_pred[:, :N_PARAMS]), axis=-1)


@keras.saving.register_keras_serializable(package="tfphys")
class ConstrainedBottleneckLoss(keras.losses.Loss):
    """Figure 1: ``L = MSE(s, s′) + MSE(p, p′)``, averaged over the batch.

    ``y_true = [p ‖ s]`` and ``y_pred = [p′ ‖ s′]``, both ``(batch, 2 + 1024)``; each MSE averages
    over its own components, so the 2 parameters weigh as much as the 1024 samples.
    """

    def __init__(self, name="constrained_bottleneck_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return signal_loss(y_true, y_pred) + params_loss(y_true, y_pred)


def loss_terms() -> list:
    """The two terms as metrics, logged as ``signal_loss`` and ``params_loss`` (and ``val_…``)."""
    return [keras.metrics.MeanMetricWrapper(signal_loss, name="signal_loss"),
            keras.metrics.MeanMetricWrapper(params_loss, name="params_loss")]


# --------------------------------------------------------------------------- the three jobs (§4)
def _predict(model: keras.Model, x: np.ndarray, batch_size: int) -> np.ndarray:
    x = np.asarray(x, np.float32)
    out = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out)


def _check(x, width, what):
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != width:
        raise TfphysError(f"{what} must have shape (n, {width}), got {x.shape}")
    return x


def estimate(model: keras.Model, waveforms, batch_size: int = 1024) -> np.ndarray:
    """Parameter estimation ``f̂⁻¹(s)``: ``(n, 1024)`` normalised waveforms → ``(n, 2)`` (θ′, η′)."""
    return _predict(model.get_layer("encoder"), _check(waveforms, N_SAMPLES, "waveforms"), batch_size)


def generate(model: keras.Model, params, batch_size: int = 1024) -> np.ndarray:
    """Signal generation ``f̂(p)``: ``(n, 2)`` (θ, η) → ``(n, 1024)`` normalised noiseless waveforms."""
    return _predict(model.get_layer("decoder"), _check(params, N_PARAMS, "parameters"), batch_size)


def denoise(model: keras.Model, waveforms, batch_size: int = 1024) -> np.ndarray:
    """Denoising ``f̂(f̂⁻¹(s))``: ``(n, 1024)`` noisy → ``(n, 1024)`` denoised (normalised)."""
    out = model.predict(_check(waveforms, N_SAMPLES, "waveforms"), batch_size=batch_size, verbose=0)
    return np.asarray(out[:, N_PARAMS:])
