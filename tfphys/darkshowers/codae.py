"""CoDAE and its CAE baseline — Anzalone et al. 2024, "Triggering dark showers with conditional
dual auto-encoders" (§4.3–4.4, Figure 4, Algorithm 2; CAE: §5.2).

Input: mask images ``I_m`` of shape ``(batch, 72, 58, 1)`` with pixels in {0, 1} (Algorithm 1).
Output: Bernoulli probabilities ``Î_m`` of the same shape.

* ``f_R`` (residual encoder): stride-2 conv unit + residual block per stage,
  72×58 → 36×29 → 18×15 → 9×8 → 5×4, then a linear 1×1 conv → ``Z`` of shape 5×4×64.
* ``f_m`` (mask encoder): 4 × (conv unit, 3×3 max-pool stride 2) → flatten → Dense(2) → ``Z_m``.
* decoder ``D(Z | Z_m)``: per stage, spatial conditioning on ``Z_m`` → bilinear ×2 up-sampling →
  conv unit → residual block; 80×64 → centre crop 72×58 → 1×1 conv with a sigmoid.

A conv unit is Conv2D 3×3 'same' → instance norm → LeakyReLU(0.2) with he_uniform kernels
(authors' implementation, see ``shared/REFERENCE.md``). Instance norm is
:class:`~tfphys.layers.InstanceNormalization` — the maths of ``GroupNormalization(groups=-1)`` on
4-D tensors, which exports ~3× faster and quantises to int8; grouped convolutions are
:class:`~tfphys.layers.GroupedConv2D` (fast to train on CPU). Both convert to builtin TFLite ops.

The CAE is the same f_R and decoder without f_m and without conditioning (§5.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from tfphys.darkshowers.layers import SpatialConditioning
from tfphys.layers import GroupedConv2D, InstanceNormalization

INPUT_SHAPE = (72, 58, 1)


def conv_unit(x, filters, *, strides=1, groups=1, slope=0.2, name):
    """Conv2D 3×3 'same' → instance norm → LeakyReLU (Figure 4's block)."""
    x = GroupedConv2D(filters, 3, strides=strides, groups=groups, name=f"{name}_conv")(x)
    x = InstanceNormalization(name=f"{name}_norm")(x)
    return keras.layers.LeakyReLU(slope, name=f"{name}_act")(x)


def residual_block(x, filters, *, groups, slope, name):
    """Two conv units and a skip connection (the dashed ⊕ of Figure 4)."""
    y = conv_unit(x, filters, groups=groups, slope=slope, name=f"{name}_a")
    y = conv_unit(y, filters, groups=groups, slope=slope, name=f"{name}_b")
    return keras.layers.Add(name=f"{name}_add")([x, y])


def residual_encoder(
    filters: Sequence[int] = (64, 128, 128, 256),
    groups: int = 4,
    latent_channels: int = 64,
    slope: float = 0.2,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """``f_R``: ``(batch, 72, 58, 1)`` → ``Z`` of shape ``(batch, 5, 4, latent_channels)``."""
    inputs = keras.Input(input_shape, name="mask")
    x = residual_stages(inputs, filters, groups, slope)
    z = keras.layers.Conv2D(latent_channels, 1, kernel_initializer="he_uniform", name="z")(x)
    return keras.Model(inputs, z, name="f_R")


def residual_stages(x, filters: Sequence[int], groups: int, slope: float):
    """f_R's trunk: per stage a stride-2 conv unit and a residual block (72×58 → … → 5×4)."""
    for i, f in enumerate(filters):
        # The first strided conv sees one input channel, so it cannot be grouped.
        x = conv_unit(x, f, strides=2, groups=1 if i == 0 else groups, slope=slope, name=f"down{i}")
        x = residual_block(x, f, groups=groups, slope=slope, name=f"res{i}")
    return x


def mask_encoder(
    filters: Sequence[int] = (64, 128, 128, 256),
    groups: int = 2,
    latent_dim: int = 2,
    slope: float = 0.2,
    input_shape=INPUT_SHAPE,
) -> keras.Model:
    """``f_m``: ``(batch, 72, 58, 1)`` → ``Z_m`` of shape ``(batch, latent_dim)``."""
    inputs = keras.Input(input_shape, name="mask")
    x = inputs
    for i, f in enumerate(filters):
        x = conv_unit(x, f, groups=1 if i == 0 else groups, slope=slope, name=f"stage{i}")
        x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"stage{i}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    z_m = keras.layers.Dense(latent_dim, kernel_initializer="he_uniform", name="z_m")(x)
    return keras.Model(inputs, z_m, name="f_m")


def decoder(
    latent_shape,
    filters: Sequence[int] = (256, 128, 128, 64),
    groups: int = 4,
    slope: float = 0.2,
    output_shape=INPUT_SHAPE,
    latent_dim: int | None = 2,
    conditioning_kernel: int = 3,
    output_bias: float = -1.0,
) -> keras.Model:
    """``D(Z | Z_m)``; with ``latent_dim=None`` the unconditioned CAE decoder ``D(Z)``.

    The output bias starts at ``output_bias`` (paper §4.7: −1, a better first guess for sparse
    masks: sigmoid(−1) ≈ 0.27).
    """
    z = keras.Input(latent_shape, name="z")
    inputs = [z]
    if latent_dim is not None:
        z_m = keras.Input((latent_dim,), name="z_m")
        inputs.append(z_m)
    x = z
    for i, f in enumerate(filters):
        if latent_dim is not None:
            x = SpatialConditioning(conditioning_kernel, name=f"cond{i}")([x, z_m])
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{i}")(x)
        # The first decoder conv is dense (groups=1): this matches the authors' ~764k parameters.
        x = conv_unit(x, f, groups=1 if i == 0 else groups, slope=slope, name=f"up{i}")
        x = residual_block(x, f, groups=groups, slope=slope, name=f"res{i}")
    x = keras.layers.CenterCrop(*output_shape[:2], name="crop")(x)
    probs = keras.layers.Conv2D(
        output_shape[-1], 1, activation="sigmoid", kernel_initializer="he_uniform",
        bias_initializer=keras.initializers.Constant(output_bias), name="probs",
    )(x)
    return keras.Model(inputs, probs, name="decoder")


def build_codae(
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
    name: str = "codae",
) -> keras.Model:
    """The conditional dual auto-encoder: ``Î_m = D(f_R(I_m) | f_m(I_m))``.

    The sub-models are reachable as ``model.get_layer("f_R")``, ``"f_m"`` and ``"decoder"``
    (``f_m`` alone is the fast latent-space trigger of §5).
    """
    f_r = residual_encoder(encoder_filters, encoder_groups, latent_channels, leaky_slope)
    f_m = mask_encoder(mask_filters, mask_groups, latent_dim, leaky_slope)
    dec = decoder(
        f_r.output.shape[1:], decoder_filters, decoder_groups, leaky_slope,
        latent_dim=latent_dim, conditioning_kernel=conditioning_kernel, output_bias=output_bias,
    )
    inputs = keras.Input(INPUT_SHAPE, name="mask")
    outputs = dec([f_r(inputs), f_m(inputs)])
    return keras.Model(inputs, outputs, name=name)


def build_cae(
    encoder_filters: Sequence[int] = (64, 128, 128, 256),
    encoder_groups: int = 4,
    latent_channels: int = 64,
    decoder_filters: Sequence[int] = (256, 128, 128, 64),
    decoder_groups: int = 4,
    leaky_slope: float = 0.2,
    output_bias: float = -1.0,
    name: str = "cae",
) -> keras.Model:
    """The CAE baseline (§5.2): CoDAE's f_R and decoder, no f_m, no conditioning."""
    f_r = residual_encoder(encoder_filters, encoder_groups, latent_channels, leaky_slope)
    dec = decoder(
        f_r.output.shape[1:], decoder_filters, decoder_groups, leaky_slope,
        latent_dim=None, output_bias=output_bias,
    )
    inputs = keras.Input(INPUT_SHAPE, name="mask")
    return keras.Model(inputs, dec(f_r(inputs)), name=name)
