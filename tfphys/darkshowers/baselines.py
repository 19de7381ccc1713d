"""The trainable baselines of the CoDAE paper (Anzalone et al. 2024, §5.2): an AE in the style of
Heimel et al., the weakly supervised Dirichlet VAE of Dillon et al., and the supervised Compact
Convolutional Transformer (CCT) of Hassani et al. as the upper bound.

Every model takes the Algorithm-1 mask images ``(batch, 72, 58, 1)`` (pixels in {0, 1}) as its one
input; any normalisation happens inside the model in a serialisable layer, so a run's
``model.keras`` is all a trigger needs. All layers load with ``safe_mode=True`` and the inference
graphs use builtin TFLite ops only (no sampling: the Dirichlet VAE's inference path is its mean).

* ``ae`` — :func:`build_ae`: (conv → PReLU) × 2 + 2×2 average pooling per stage, dense layers to a
  32-d latent, dense → reshape → (stride-2 transposed conv + conv) per stage → centre crop → 1×1
  conv with a sigmoid; squared error summed over pixels (the authors' "MSE"); ≈ 600 k parameters.
  Heimel et al. ("QCD or What?", SciPost Phys. 6, 030) only show a figure; the CoDAE authors
  "did their best to mimic" it, as do we — sizes are chosen to match the paper's 600 k and 32.
* ``dirvae`` — :func:`build_dirvae` (Dillon et al., "Better latent spaces for better
  autoencoders", SciPost Phys. 11, 061): image normalised to sum 1 → Dense(512, selu) → batch norm →
  (μ, log σ²) of a K = 3 Gaussian in the softmax basis → z = softmax(h) on the simplex, whose prior
  is the Laplace (softmax-Gaussian) approximation of a Dirichlet(α) → Dense(no bias) → softmax over
  the 72 × 58 pixels. Loss: multinomial NLL of the hits + β · KL (see :class:`DirichletLatent`).
* ``cct`` — :func:`build_cct` (Hassani et al. 2021, "Escaping the big data paradigm with compact
  transformers"): conv tokenizer → learnable positional embedding → transformer encoder layers
  (pre-norm, stochastic depth) → sequence pooling → softmax over QCD / SUEP / SVJ (or QCD / signal).

Anomaly scores (larger = more anomalous), used by ``tfphys-export`` and ``tfphys-eval``:
:func:`ae_score` (SSE), :func:`dirvae_score` (cross-entropy of the normalised image and its
reconstruction), :func:`cct_score` (1 − p(QCD) = the predicted signal probability).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

INPUT_SHAPE = (72, 58, 1)
EPSILON = 1e-7


# ------------------------------------------------------------------------------- shared layers
@keras.saving.register_keras_serializable(package="tfphys")
class SumNormalization(keras.layers.Layer):
    """Normalise each event to unit sum: ``x̃ = x / max(Σ x, ε)``.

    The Dirichlet VAE's input convention (images "normalised to sum to one", paper §5.2). An empty
    image stays all zeros. Input and output: any shape ``(batch, ...)``.
    """

    def __init__(self, epsilon=EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        axes = tuple(range(1, len(x.shape)))
        return x / ops.maximum(ops.sum(x, axis=axes, keepdims=True), self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# -------------------------------------------------------------------------------------- losses
@keras.saving.register_keras_serializable(package="tfphys")
class SummedSquaredError(keras.losses.Loss):
    """Squared error summed over all pixels, averaged over the batch:
    ``L = (1/B) Σ_b Σ_p (x_p − x̂_p)²``. The AE baseline's "mean squared loss" as the CoDAE
    authors implement it (sum over pixels, mean over events). Shapes ``(batch, H, W, C)`` both."""

    def __init__(self, name="sse", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        diff = ops.reshape(ops.square(y_true - y_pred), (ops.shape(y_pred)[0], -1))
        return ops.sum(diff, axis=-1)


@keras.saving.register_keras_serializable(package="tfphys")
class MultinomialNLL(keras.losses.Loss):
    """Negative log-likelihood of the hit pixels under the decoder's pixel distribution:
    ``L = −(1/B) Σ_b Σ_p x_p log p̂_p`` with ``x`` the binary mask (hit counts) and ``p̂`` the
    softmax over pixels (``Σ_p p̂_p = 1``).

    This is ``N_hits · H(x̃, p̂)``, the cross-entropy of the normalised image ``x̃ = x/Σx`` weighted by
    its number of hits — the multinomial likelihood of topic models (ProdLDA), and the scale of the
    CoDAE authors' DVAE loss (Keras ``KLDivergence(x, p̂)`` on masks, ≈ 670 nats per event).
    Shapes ``(batch, H, W, C)`` both.
    """

    def __init__(self, name="multinomial_nll", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        terms = -y_true * ops.log(ops.clip(y_pred, EPSILON, 1.0))
        return ops.sum(ops.reshape(terms, (ops.shape(y_pred)[0], -1)), axis=-1)


# ------------------------------------------------------------------------------------------ AE
def build_ae(
    encoder_filters: Sequence[Sequence[int]] = ((32, 32), (64, 64), (64, 64)),
    encoder_units: Sequence[int] = (),
    latent_dim: int = 32,
    decoder_units: Sequence[int] = (),
    decoder_reshape: Sequence[int] = (9, 8, 64),
    decoder_filters: Sequence[int] = (64, 64, 32),
    output_bias: float = 0.0,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """The AE baseline "inspired by Heimel et al." (paper §5.2): ``(batch, 72, 58, 1)`` masks →
    reconstructions in (0, 1) of the same shape.

    Encoder: per stage ``(f1, f2)`` a 3×3 conv with ``f1`` filters and PReLU, then (if ``f2`` > 0)
    a second one with ``f2``, then 2×2 average pooling (72×58 → 36×29 → 18×14 → 9×7); flatten →
    dense + PReLU per ``encoder_units`` → linear Dense(``latent_dim``) = the latent ``z``.
    Decoder: dense + PReLU per ``decoder_units`` → dense + PReLU to ``decoder_reshape`` (9×8×C) →
    per stage a stride-2 3×3 transposed conv and a 3×3 conv (PReLU each) → 72×64 → centre crop
    72×58 → 1×1 conv with a sigmoid (bias initialised to ``output_bias``).
    PReLU slopes are shared over the spatial axes (one per channel). The defaults give 600,673
    parameters (encoder 268 k, decoder 332 k): the paper's "600k parameters, latent space of 32".
    """
    h, w, _ = decoder_reshape
    up = 2 ** len(decoder_filters)
    if h * up < input_shape[0] or w * up < input_shape[1]:
        raise ValueError(f"decoder_reshape {tuple(decoder_reshape)} × {up} does not cover {input_shape[:2]}")

    inputs = keras.Input(input_shape, name="mask")
    x = inputs
    for i, stage in enumerate(encoder_filters):
        for j, f in enumerate(stage):
            if f:
                x = keras.layers.Conv2D(int(f), 3, padding="same", name=f"enc{i}_conv{j}")(x)
                x = keras.layers.PReLU(shared_axes=[1, 2], name=f"enc{i}_act{j}")(x)
        x = keras.layers.AveragePooling2D(2, name=f"enc{i}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(encoder_units):
        x = keras.layers.Dense(int(units), name=f"enc_dense{i}")(x)
        x = keras.layers.PReLU(name=f"enc_dense{i}_act")(x)
    z = keras.layers.Dense(int(latent_dim), name="z")(x)
    encoder = keras.Model(inputs, z, name="encoder")

    z_in = keras.Input((int(latent_dim),), name="z")
    y = z_in
    for i, units in enumerate([*decoder_units, int(np.prod(decoder_reshape))]):
        y = keras.layers.Dense(int(units), name=f"dec_dense{i}")(y)
        y = keras.layers.PReLU(name=f"dec_dense{i}_act")(y)
    y = keras.layers.Reshape(tuple(int(d) for d in decoder_reshape), name="reshape")(y)
    for i, f in enumerate(decoder_filters):
        y = keras.layers.Conv2DTranspose(int(f), 3, strides=2, padding="same", name=f"dec{i}_up")(y)
        y = keras.layers.PReLU(shared_axes=[1, 2], name=f"dec{i}_up_act")(y)
        y = keras.layers.Conv2D(int(f), 3, padding="same", name=f"dec{i}_conv")(y)
        y = keras.layers.PReLU(shared_axes=[1, 2], name=f"dec{i}_conv_act")(y)
    y = keras.layers.CenterCrop(input_shape[0], input_shape[1], name="crop")(y)
    y = keras.layers.Conv2D(1, 1, activation="sigmoid", name="reconstruction",
                            bias_initializer=keras.initializers.Constant(output_bias))(y)
    decoder = keras.Model(z_in, y, name="decoder")
    return keras.Model(inputs, decoder(encoder(inputs)), name="ae")


def ae_score(x, outputs) -> np.ndarray:
    """Sum of squared errors per event, ``Σ_p (x_p − x̂_p)²``: ``(batch,)``, the AE's training
    loss per event (= 4176 × its per-pixel MSE, so the same ranking)."""
    x_hat = _first(outputs)
    diff = np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)
    return np.square(diff).reshape(len(diff), -1).sum(axis=1)


# ------------------------------------------------------------------------------------- DirVAE
def dirichlet_laplace(concentration) -> tuple[np.ndarray, np.ndarray]:
    """Laplace approximation of ``Dirichlet(α)`` in the softmax basis (MacKay 1998; Srivastava &
    Sutton 2017, ProdLDA): ``z = softmax(h)`` with ``h ~ N(μ, diag σ²)``,

        μ_k  = log α_k − (1/K) Σ_l log α_l
        σ²_k = (1/α_k)(1 − 2/K) + (1/K²) Σ_l 1/α_l

    Returns ``(μ, σ²)``, each of shape ``(K,)``, float64.
    """
    a = np.asarray(concentration, np.float64)
    if a.ndim != 1 or len(a) < 2 or np.any(a <= 0):
        raise ValueError(f"concentration must be ≥ 2 positive numbers, got {concentration}")
    k = len(a)
    mean = np.log(a) - np.log(a).mean()
    var = (1.0 / a) * (1.0 - 2.0 / k) + (1.0 / a).sum() / k**2
    return mean, var


@keras.saving.register_keras_serializable(package="tfphys")
class DirichletLatent(keras.layers.Layer):
    """Dirichlet latent space through the softmax-Gaussian (Laplace) approximation.

    Input: the encoder's moments ``[μ | log σ²]`` concatenated, ``(batch, 2K)`` (one tensor, so an
    exported encoder has one output); ``log σ²`` is clipped to ``[−20, 2]`` (authors).
    The posterior is ``q(h|x) = N(μ, diag σ²)`` (``tfp.distributions.MultivariateNormalDiag``), the
    prior ``p(h) = N(μ₀, diag σ₀²)`` is :func:`dirichlet_laplace` of ``concentration``, and the layer
    adds ``kl_weight · mean_b KL(q ‖ p)`` (analytic, ``tfd.kl_divergence``) to the model's losses:

        KL = ½ Σ_k [σ²_k/σ₀²_k + (μ_k − μ₀_k)²/σ₀²_k − 1 + log σ₀²_k − log σ²_k]

    Training: ``h = μ + σ ε`` (reparameterised sample) and output ``z = softmax(h)``. Inference:
    ``z = softmax(μ)`` — deterministic, no random ops, so it exports to builtin TFLite ops.
    Output ``(batch, K)``, non-negative, summing to 1 (a point on the simplex).
    """

    def __init__(self, concentration=(1.0, 0.25, 0.1), kl_weight=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.concentration = [float(a) for a in concentration]
        self.kl_weight = float(kl_weight)
        self.seed = seed
        mean, var = dirichlet_laplace(self.concentration)
        self._prior = (mean.astype("float32"), var.astype("float32"))
        self.seed_generator = keras.random.SeedGenerator(seed)

    def distributions(self, mean, log_var):
        """(posterior, prior) as ``tfp.distributions.MultivariateNormalDiag`` (batch shape B)."""
        import tensorflow_probability as tfp

        tfd = tfp.distributions
        log_var = ops.clip(log_var, -20.0, 2.0)
        posterior = tfd.MultivariateNormalDiag(loc=mean, scale_diag=ops.exp(0.5 * log_var))
        prior = tfd.MultivariateNormalDiag(loc=ops.convert_to_tensor(self._prior[0]),
                                           scale_diag=ops.sqrt(ops.convert_to_tensor(self._prior[1])))
        return posterior, prior

    def kl(self, mean, log_var):
        """``KL(q(h|x) ‖ p(h))`` per event: ``(batch,)``."""
        import tensorflow_probability as tfp

        posterior, prior = self.distributions(mean, log_var)
        return tfp.distributions.kl_divergence(posterior, prior)

    def call(self, inputs, training=None):
        k = len(self.concentration)
        mean, log_var = inputs[:, :k], inputs[:, k:]
        if training:
            import tensorflow as tf

            self.add_loss(self.kl_weight * ops.mean(self.kl(mean, log_var)))
            posterior, _ = self.distributions(mean, log_var)
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            return ops.softmax(posterior.sample(seed=seed), axis=-1)
        return ops.softmax(mean, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.concentration))

    def get_config(self):
        return {**super().get_config(), "concentration": self.concentration,
                "kl_weight": self.kl_weight, "seed": self.seed}


def build_dirvae(
    hidden_units: int = 512,
    concentration: Sequence[float] = (1.0, 0.25, 0.1),
    kl_weight: float = 0.1,
    batch_norm: bool = True,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """Dirichlet VAE (Dillon et al. 2021; the CoDAE authors' settings): masks ``(batch, 72, 58, 1)``
    → the decoder's pixel distribution ``p̂`` of the same shape (``Σ_p p̂_p = 1`` per event).

    Nested models: ``encoder`` (masks → moments ``[μ | log σ²]``, ``(batch, 2K)``, K =
    ``len(concentration)``) and ``decoder`` (``z`` on the simplex → ``p̂``); the
    :class:`DirichletLatent` layer ``latent`` sits between them. Encoder: flatten → normalise to
    sum 1 → Dense(``hidden_units``, selu) → batch norm (scale only, as the authors) → two linear
    Dense(K) (one Dense(2K) here: the same maths, one output tensor). Decoder: Dense(4176, no
    bias) → softmax over all pixels → reshape; its K × 4176 weight rows are the learned "topics"
    (one mean image per mixture component).
    ``kl_weight``: β of ``loss = NLL + β · KL`` (authors: 0.1). ``concentration``: the Dirichlet
    prior's α (authors: (1, 0.25, 0.1)).
    """
    k = len(concentration)
    n_pixels = int(np.prod(input_shape))
    inputs = keras.Input(input_shape, name="mask")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = SumNormalization(name="normalise")(x)
    x = keras.layers.Dense(int(hidden_units), activation="selu", kernel_initializer="lecun_normal",
                           name="hidden")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(center=False, scale=True, name="hidden_norm")(x)
    moments = keras.layers.Dense(2 * k, name="moments")(x)  # [μ | log σ²]
    encoder = keras.Model(inputs, moments, name="encoder")

    z_in = keras.Input((k,), name="z")
    logits = keras.layers.Dense(n_pixels, use_bias=False, name="topics")(z_in)
    p = keras.layers.Softmax(name="pixel_softmax")(logits)
    p = keras.layers.Reshape(tuple(input_shape), name="reshape")(p)
    decoder = keras.Model(z_in, p, name="decoder")

    z = DirichletLatent(concentration, kl_weight, name="latent")(encoder(inputs))
    return keras.Model(inputs, decoder(z), name="dirvae")


def dirvae_latent(model: keras.Model, x, batch_size: int = 256) -> np.ndarray:
    """The Dirichlet VAE's deterministic latent ``z = softmax(μ(x))``: ``(n, K)``, rows sum to 1.
    Its components ``Z_k`` are the latent anomaly scores of Dillon et al. (the paper's Table 1 uses
    ``Z_2``)."""
    moments = model.get_layer("encoder").predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0)
    mean = moments[:, : moments.shape[1] // 2]
    e = np.exp(mean - mean.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dirvae_score(x, outputs) -> np.ndarray:
    """Reconstruction score of the Dirichlet VAE: the cross-entropy of the normalised image and the
    decoder's pixel distribution, ``H(x̃, p̂) = −Σ_p x̃_p log p̂_p`` with ``x̃ = x / Σx`` — Dillon et
    al.'s reconstruction loss (the per-event training NLL divided by the number of hits, so busier
    events are not scored higher merely for having more hits). ``(batch,)``; 0 hits → 0.

    To compare its reconstructions with other models' (paper Table 4), undo the normalisation:
    ``x̂ = p̂ · Σx``.
    """
    p = np.clip(np.asarray(_first(outputs), np.float64), EPSILON, 1.0)
    x = np.asarray(x, np.float64).reshape(len(p), -1)
    total = x.sum(axis=1, keepdims=True)
    x_norm = x / np.maximum(total, EPSILON)
    return -(x_norm * np.log(p.reshape(len(p), -1))).sum(axis=1)


# ---------------------------------------------------------------------------------------- CCT
@keras.saving.register_keras_serializable(package="tfphys")
class PositionalEmbedding(keras.layers.Layer):
    """A learnable embedding per token position, added to the tokens: ``y_{b,n} = x_{b,n} + E_n``.
    Input and output ``(batch, N, D)`` (``N``, ``D`` static)."""

    def build(self, input_shape):
        self.embedding = self.add_weight(shape=tuple(input_shape[1:]), name="embedding",
                                         initializer=keras.initializers.TruncatedNormal(stddev=0.2))

    def call(self, x):
        return x + self.embedding

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="tfphys")
class StochasticDepth(keras.layers.Layer):
    """Residual add with stochastic depth (Huang et al. 2016): ``[shortcut, residual]`` →
    ``shortcut + b · residual / (1 − rate)`` with ``b ~ Bernoulli(1 − rate)`` per event while
    training, ``shortcut + residual`` at inference (no random ops). Shapes ``(batch, ...)``."""

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        shortcut, residual = inputs
        if training and self.rate > 0:
            shape = (ops.shape(residual)[0],) + (1,) * (len(residual.shape) - 1)
            keep = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) >= self.rate,
                            residual.dtype)
            return shortcut + residual * keep / (1.0 - self.rate)
        return shortcut + residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfphys")
class SequencePooling(keras.layers.Layer):
    """CCT's sequence pooling (Hassani et al. 2021, Eq. 6): attention weights over the tokens,
    ``w = softmax_n(x W + b)``, and the weighted sum ``y = Σ_n w_n x_n``.
    Input ``(batch, N, D)``, output ``(batch, D)``."""

    def build(self, input_shape):
        self.score = keras.layers.Dense(1, name="score")
        self.score.build(input_shape)

    def call(self, x):
        weights = ops.softmax(self.score(x), axis=1)  # (batch, N, 1)
        return ops.sum(weights * x, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def build_cct(
    tokenizer_filters: Sequence[int] = (64, 128),
    kernel_size: int = 3,
    pool_size: int = 3,
    transformer_layers: int = 2,
    num_heads: int = 2,
    mlp_units: Sequence[int] = (128, 128),
    dropout: float = 0.2,
    attention_dropout: float = 0.1,
    stochastic_depth: float = 0.2,
    num_classes: int = 3,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """Compact Convolutional Transformer (Hassani et al. 2021; the CoDAE authors' settings):
    masks ``(batch, 72, 58, 1)`` → class probabilities ``(batch, num_classes)`` (softmax; class 0
    is QCD, then SUEP, SVJ — or 0 QCD / 1 signal with ``num_classes = 2``).

    Tokenizer: per filter count a 3×3 'valid' conv (ReLU, no bias) → zero-pad 1 → 3×3 max pool,
    stride 2 ('same'): 72×58 → 36×29 → 18×15, i.e. 270 tokens of dimension ``tokenizer_filters[-1]``.
    Learnable positional embedding, then ``transformer_layers`` pre-norm encoder layers (multi-head
    self-attention, MLP with GELU and dropout, stochastic-depth residuals rising linearly from 0 to
    ``stochastic_depth``), a final layer norm, sequence pooling and a dense softmax classifier.
    """
    if num_classes not in (2, 3):
        raise ValueError(f"num_classes must be 2 (QCD vs signal) or 3 (QCD, SUEP, SVJ), got {num_classes}")
    if transformer_layers and int(mlp_units[-1]) != int(tokenizer_filters[-1]):
        raise ValueError(f"the MLP's last width {mlp_units[-1]} must equal the token dimension "
                         f"{tokenizer_filters[-1]} (residual connection)")
    inputs = keras.Input(input_shape, name="mask")
    x = inputs
    for i, f in enumerate(tokenizer_filters):
        x = keras.layers.Conv2D(int(f), kernel_size, padding="valid", use_bias=False, activation="relu",
                                kernel_initializer="he_normal", name=f"tokenizer{i}_conv")(x)
        x = keras.layers.ZeroPadding2D(1, name=f"tokenizer{i}_pad")(x)
        x = keras.layers.MaxPooling2D(pool_size, strides=2, padding="same", name=f"tokenizer{i}_pool")(x)
    _, h, w, d = x.shape
    tokens = keras.layers.Reshape((h * w, d), name="tokens")(x)
    tokens = PositionalEmbedding(name="positions")(tokens)

    rates = np.linspace(0.0, stochastic_depth, transformer_layers) if transformer_layers else []
    for i, rate in enumerate(rates):
        y = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm1")(tokens)
        y = keras.layers.MultiHeadAttention(num_heads, key_dim=d, dropout=attention_dropout,
                                            name=f"block{i}_attention")(y, y)
        tokens = StochasticDepth(float(rate), name=f"block{i}_residual1")([tokens, y])
        y = keras.layers.LayerNormalization(epsilon=1e-5, name=f"block{i}_norm2")(tokens)
        for j, units in enumerate(mlp_units):
            y = keras.layers.Dense(int(units), activation="gelu", name=f"block{i}_mlp{j}")(y)
            y = keras.layers.Dropout(dropout, name=f"block{i}_mlp{j}_dropout")(y)
        tokens = StochasticDepth(float(rate), name=f"block{i}_residual2")([tokens, y])
    tokens = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")(tokens)
    pooled = SequencePooling(name="sequence_pooling")(tokens)
    probs = keras.layers.Dense(int(num_classes), activation="softmax", name="probabilities")(pooled)
    return keras.Model(inputs, probs, name="cct")


def cct_score(x, outputs) -> np.ndarray:
    """The CCT's predicted signal probability ``1 − p(QCD)`` (= p(SUEP) + p(SVJ)): ``(batch,)``."""
    p = np.asarray(_first(outputs), np.float64)
    return 1.0 - p[:, 0]


@keras.saving.register_keras_serializable(package="tfphys")
class SignalAUC(keras.metrics.AUC):
    """AUROC of background (class 0) vs any signal class, from one-hot targets and class
    probabilities: ``is_signal = 1 − y[:, 0]``, score ``1 − p̂[:, 0]``. Model selection for the CCT
    (the authors monitor the validation AUC)."""

    def __init__(self, name="signal_auc", **kwargs):
        kwargs.pop("curve", None)
        super().__init__(name=name, num_thresholds=kwargs.pop("num_thresholds", 1000), **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(1.0 - y_true[:, 0], 1.0 - y_pred[:, 0], sample_weight=sample_weight)


def _first(outputs):
    """The main output of a model's ``predict`` result (a list/tuple/dict gives its first)."""
    if isinstance(outputs, dict):
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[0]
    return outputs
