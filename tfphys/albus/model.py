"""ALBUS — the pixel-wise U-Net of Boudart & Fays (arXiv 2201.08727), §II.B and Figure 7.

The network is the one of Xing et al. (2019, "KiNet", the paper's ref. [50]) with every filter
count halved. No pooling: each *down* step is a 3×3 stride-2 convolution followed by a residual
block of ``n`` conv–BN–ELU layers; each *up* step is a 3×3 stride-2 transposed convolution, a
crop/pad to the size of the matching down level (this is what lets the odd 166 × 1025 map through
without cropping the map itself: 166 → 83 → 42 → 21 → 11 and back 22 → 21, 42, 84 → 83, 166),
concatenation of that skip, and a conv–BN–ELU layer plus a residual block. Dropout acts on the
deepest skips. A 1×1 convolution gives the localisation map, trained with the MSE of Eq. (6)
against the §II.B targets in [0, 1]. Its activation is linear by default (``models/albus.toml``):
with a sigmoid, the mostly-zero targets push every logit down, the sigmoid's slope with it, and the
chirp pixels' gradient vanishes — short trainings then stay at the constant output
(``tools/albus_fit_study.py``); the linear map starts at 0 and is read as values in [0, 1].

    input (B, 166, 1025, 3) RGB in [0, 1]  ──►  output (B, 166, 1025, 1)

Widths: down 16-32-64-128-128, up 128-64-32-16 (KiNet: 32-64-128-256-256 / 256-128-64-32).
With 3 conv layers per residual block this is 2.51 M parameters (4 would give 3.05 M; the
paper's ≈ 2.9 M lies between — its Figure 7 does not fix the per-block depth, so it is the
``convs_per_block`` option).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="tfphys")
class CropOrPadTo(keras.layers.Layer):
    """Crop or zero-pad a feature map's rows and columns (at the end) to a reference's size.

    After a stride-2 'same' convolution an odd size ``n`` becomes ``⌈n/2⌉``; the transposed
    convolution brings back ``2⌈n/2⌉ = n + 1``, one row or column too many, which lies at the end
    (where 'same' padding put the extra zero). Cropping there realigns the up path with its skip;
    padding covers the opposite case (any other down/up arithmetic).

    Input: ``[x, reference]`` with ``x`` of shape ``(batch, H, W, C)`` and ``reference`` of shape
    ``(batch, H', W', C')`` (static ``H'``, ``W'``). Output: ``(batch, H', W', C)``. Only slicing and
    padding: builtin TFLite ops.
    """

    def compute_output_shape(self, input_shape):
        x, ref = input_shape
        return (x[0], ref[1], ref[2], x[3])

    def call(self, inputs):
        x, ref = inputs
        height, width = ref.shape[1], ref.shape[2]
        if height is None or width is None or x.shape[1] is None or x.shape[2] is None:
            raise ValueError(f"CropOrPadTo needs static spatial sizes, got {x.shape} and {ref.shape}")
        x = x[:, : min(height, x.shape[1]), : min(width, x.shape[2]), :]
        pad_h, pad_w = height - x.shape[1], width - x.shape[2]
        if pad_h or pad_w:
            x = ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        return x


def conv_bn_elu(x, filters: int, *, strides: int = 1, momentum: float = 0.9, name: str):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return layers.ELU(name=f"{name}_elu")(x)


def residual_block(x, filters: int, n: int, *, momentum: float = 0.9, name: str):
    """``n`` conv–BN–ELU layers, added to their input (KiNet's residual unit)."""
    y = x
    for i in range(n):
        y = conv_bn_elu(y, filters, momentum=momentum, name=f"{name}_{i}")
    return layers.Add(name=f"{name}_add")([x, y])


def build_albus(
    input_shape: Sequence[int] = (166, 1025, 3),
    down_filters: Sequence[int] = (16, 32, 64, 128, 128),
    up_filters: Sequence[int] = (128, 64, 32, 16),
    convs_per_block: int = 3,
    dropout: float = 0.2,
    dropout_skips: int = 2,
    output_bias: float = 0.0,
    bn_momentum: float = 0.9,
    output_activation: str = "linear",
) -> keras.Model:
    """The ALBUS U-Net. Output shape = input shape with one channel, for any (H, W).

    ``down_filters``: widths of the full-resolution stage and of each stride-2 down step (its
    length − 1 down steps); ``up_filters``: one per up step, ``len(down_filters) − 1`` of them.
    ``dropout`` on the ``dropout_skips`` deepest skips. ``output_activation``: ``"linear"``
    (the output starts at ``output_bias`` everywhere: zero 1×1 kernel) or ``"sigmoid"``
    (``output_bias`` is then the initial logit, e.g. −3 → 0.05). ``bn_momentum``: BatchNorm moving-average
    momentum in Keras' convention; 0.9 is PyTorch's default (its ``momentum=0.1``), the framework
    the paper trained with — Keras' own 0.99 needs ~500 steps before the inference-mode statistics
    match the training ones, longer than a CPU run here.
    """
    from tfphys.errors import TfphysError

    down_filters, up_filters = [int(f) for f in down_filters], [int(f) for f in up_filters]
    if len(input_shape) != 3 or any(int(s) <= 0 for s in input_shape):
        raise TfphysError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    if len(down_filters) < 2 or len(up_filters) != len(down_filters) - 1:
        raise TfphysError(f"need ≥ 2 down widths and one up width per down step, got "
                          f"{down_filters} and {up_filters}")
    if min(down_filters + up_filters) <= 0 or convs_per_block < 1 or not 0 <= dropout < 1:
        raise TfphysError("filters and convs_per_block must be positive and 0 ≤ dropout < 1")
    if output_activation not in ("sigmoid", "linear"):
        raise TfphysError(f"output_activation must be 'sigmoid' or 'linear', got {output_activation!r}")
    if not 0 <= bn_momentum < 1:
        raise TfphysError(f"bn_momentum must be in [0, 1), got {bn_momentum}")
    m = float(bn_momentum)

    inputs = keras.Input(tuple(int(s) for s in input_shape), name="coherence_rgb")
    x = conv_bn_elu(inputs, down_filters[0], momentum=m, name="stem")
    x = residual_block(x, down_filters[0], convs_per_block, momentum=m, name="down0_res")
    skips = []
    for level, filters in enumerate(down_filters[1:], start=1):
        skips.append(x)
        x = conv_bn_elu(x, filters, strides=2, momentum=m, name=f"down{level}")
        x = residual_block(x, filters, convs_per_block, momentum=m, name=f"down{level}_res")
    for step, (filters, skip) in enumerate(zip(up_filters, reversed(skips)), start=1):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", name=f"up{step}_tconv")(x)
        x = layers.BatchNormalization(momentum=m, name=f"up{step}_tbn")(x)
        x = layers.ELU(name=f"up{step}_telu")(x)
        x = CropOrPadTo(name=f"up{step}_crop")([x, skip])
        if step <= dropout_skips and dropout > 0:
            skip = layers.Dropout(dropout, name=f"up{step}_skip_dropout")(skip)
        x = layers.Concatenate(name=f"up{step}_concat")([x, skip])
        x = conv_bn_elu(x, filters, momentum=m, name=f"up{step}")
        x = residual_block(x, filters, convs_per_block, momentum=m, name=f"up{step}_res")
    # linear: start from the constant output_bias (zero kernel), so the first updates localise
    # instead of shrinking a random ±1 output map; sigmoid: the usual Glorot kernel
    kernel = "zeros" if output_activation == "linear" else "glorot_uniform"
    outputs = layers.Conv2D(1, 1, activation=output_activation, name="localisation",
                            kernel_initializer=kernel,
                            bias_initializer=keras.initializers.Constant(output_bias))(x)
    return keras.Model(inputs, outputs, name="albus")
