"""ALBUS — the pixel-wise U-Net of Boudart & Fays (arXiv 2201.08727), §II.B and Figure 7.

The network is the one of Xing et al. (2019, "KiNet", the paper's ref. [50]) with every filter
count halved. No pooling: each *down* step is a 3×3 stride-2 convolution followed by a residual
block of ``n`` conv–BN–ELU layers; each *up* step is a 3×3 stride-2 transposed convolution, a
crop/pad to the size of the matching down level (this is what lets the odd 166 × 1025 map through
without cropping the map itself: 166 → 83 → 42 → 21 → 11 and back 22 → 21, 42, 84 → 83, 166),
concatenation of that skip, and a conv–BN–ELU layer plus a residual block. Dropout acts on the
deepest skips. A 1×1 convolution with a sigmoid gives the localisation map in [0, 1] — the target
maps of §II.B are in [0, 1] — trained with the MSE of Eq. (6).

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


def conv_bn_elu(x, filters: int, *, strides: int = 1, name: str):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ELU(name=f"{name}_elu")(x)


def residual_block(x, filters: int, n: int, *, name: str):
    """``n`` conv–BN–ELU layers, added to their input (KiNet's residual unit)."""
    y = x
    for i in range(n):
        y = conv_bn_elu(y, filters, name=f"{name}_{i}")
    return layers.Add(name=f"{name}_add")([x, y])


def build_albus(
    input_shape: Sequence[int] = (166, 1025, 3),
    down_filters: Sequence[int] = (16, 32, 64, 128, 128),
    up_filters: Sequence[int] = (128, 64, 32, 16),
    convs_per_block: int = 3,
    dropout: float = 0.2,
    dropout_skips: int = 2,
    output_bias: float = -3.0,
) -> keras.Model:
    """The ALBUS U-Net. Output shape = input shape with one channel, for any (H, W).

    ``down_filters``: widths of the full-resolution stage and of each stride-2 down step (its
    length − 1 down steps); ``up_filters``: one per up step, ``len(down_filters) − 1`` of them.
    ``dropout`` on the ``dropout_skips`` deepest skips. ``output_bias``: initial logit of the
    sigmoid (−3 → 0.05: the targets are mostly zero).
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

    inputs = keras.Input(tuple(int(s) for s in input_shape), name="coherence_rgb")
    x = conv_bn_elu(inputs, down_filters[0], name="stem")
    x = residual_block(x, down_filters[0], convs_per_block, name="down0_res")
    skips = []
    for level, filters in enumerate(down_filters[1:], start=1):
        skips.append(x)
        x = conv_bn_elu(x, filters, strides=2, name=f"down{level}")
        x = residual_block(x, filters, convs_per_block, name=f"down{level}_res")
    for step, (filters, skip) in enumerate(zip(up_filters, reversed(skips)), start=1):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", use_bias=False,
                                   kernel_initializer="he_normal", name=f"up{step}_tconv")(x)
        x = layers.BatchNormalization(name=f"up{step}_tbn")(x)
        x = layers.ELU(name=f"up{step}_telu")(x)
        x = CropOrPadTo(name=f"up{step}_crop")([x, skip])
        if step <= dropout_skips and dropout > 0:
            skip = layers.Dropout(dropout, name=f"up{step}_skip_dropout")(skip)
        x = layers.Concatenate(name=f"up{step}_concat")([x, skip])
        x = conv_bn_elu(x, filters, name=f"up{step}")
        x = residual_block(x, filters, convs_per_block, name=f"up{step}_res")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="localisation",
                            bias_initializer=keras.initializers.Constant(output_bias))(x)
    return keras.Model(inputs, outputs, name="albus")
