"""Small serialisable Keras 3 layers shared by the tfphys models.

Each layer stores its constructor arguments, creates its weights in ``build`` and returns exactly
those arguments from ``get_config``, so models built from them load with
``keras.saving.load_model(path, safe_mode=True)`` and convert to builtin TFLite ops.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="tfphys")
class GroupedConv2D(keras.layers.Layer):
    """A grouped 2-D convolution computed as ``groups`` independent convolutions.

    Mathematically identical to ``keras.layers.Conv2D(groups=g)`` (same kernel layout
    ``(kh, kw, C_in / g, filters)``, same parameter count): input channels are split into ``g``
    groups, group ``i`` is convolved with output filters ``i·filters/g … (i+1)·filters/g − 1``,
    and the results are concatenated.

    Why not ``Conv2D(groups=g)``: on CPU, TensorFlow 2.21 back-propagates grouped convolutions
    through a slow generic kernel (measured here: ~25× slower than split + dense convs, see
    ``tools/README.md``). Split/conv/concat are builtin TFLite ops, so export is unaffected.

    Args:
        filters: output channels, divisible by ``groups``.
        kernel_size: int or pair.
        strides: int or pair.
        groups: number of groups; input channels must be divisible by it.
        padding: ``"same"`` or ``"valid"``.
        kernel_initializer, bias_initializer: as for ``Conv2D``.

    Input: ``(batch, H, W, C_in)``. Output: ``(batch, H', W', filters)``.
    """

    def __init__(
        self, filters, kernel_size=3, strides=1, groups=1, padding="same",
        kernel_initializer="he_uniform", bias_initializer="zeros", **kwargs,
    ):
        super().__init__(**kwargs)
        if filters % groups:
            raise ValueError(f"filters={filters} is not divisible by groups={groups}")
        self.filters = filters
        self.kernel_size = tuple(np.broadcast_to(kernel_size, 2).tolist())
        self.strides = tuple(np.broadcast_to(strides, 2).tolist())
        self.groups = groups
        self.padding = padding
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"input channels {channels} are not divisible by groups={self.groups}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.filters,), initializer=self.bias_initializer
        )

    def convolve(self, x):
        """The grouped convolution without its bias: split, one conv per group, concatenate."""
        xs = ops.split(x, self.groups, axis=-1) if self.groups > 1 else [x]
        ks = ops.split(self.kernel, self.groups, axis=-1) if self.groups > 1 else [self.kernel]
        ys = [ops.conv(xi, ki, strides=self.strides, padding=self.padding) for xi, ki in zip(xs, ks)]
        return ops.concatenate(ys, axis=-1) if self.groups > 1 else ys[0]

    def call(self, x):
        y = self.convolve(x)
        # BiasAdd, not a broadcast add: its gradient is one BiasAddGrad, where the broadcast's
        # is a generic Sum over (batch, H, W) — 4 % of a CoDAE training step.
        return tf.nn.bias_add(y, ops.cast(self.bias, y.dtype))

    def compute_output_shape(self, input_shape):
        conv = keras.layers.Conv2D(
            self.filters, self.kernel_size, strides=self.strides, padding=self.padding
        )
        return conv.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            groups=self.groups,
            padding=self.padding,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


def _instance_norm(x, gamma, beta, epsilon):
    """``γ · (x − μ) / sqrt(σ² + ε) + β`` over (H, W), with its gradient in closed form.

    Per sample and channel, with ``c = x − μ``, ``r = 1 / sqrt(σ² + ε)``, ``k = γ · r``::

        y = k · c + β
        ∂L/∂x = k · (δ − mean(δ)) − k · r² · mean(δ · c) · c,     δ = ∂L/∂y
        ∂L/∂γ = Σ r · H·W · mean(δ · c),   ∂L/∂β = Σ H·W · mean(δ)   (Σ over the batch)

    Each full-size tensor is visited a few times, against the dozen broadcasts, tiles and
    reductions automatic differentiation of the plain formula builds (the norms were 37 % of a
    CoDAE training step; this is ~2× faster, ``tools/README.md``). The forward ops are the same
    builtin TFLite ops as before (MEAN, SUB, MUL, RSQRT, ADD), so exported models are unaffected.
    """

    @ops.custom_gradient
    def norm(x, gamma, beta):
        size = ops.cast(ops.shape(x)[1] * ops.shape(x)[2], x.dtype)
        centred = x - ops.mean(x, axis=(1, 2), keepdims=True)
        inv_std = ops.rsqrt(ops.mean(centred * centred, axis=(1, 2), keepdims=True) + epsilon)
        scale = inv_std * gamma

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            mean_dy = ops.mean(dy, axis=(1, 2), keepdims=True)
            mean_dy_c = ops.mean(dy * centred, axis=(1, 2), keepdims=True)
            dx = scale * (dy - mean_dy) - (scale * inv_std * inv_std * mean_dy_c) * centred
            dgamma = ops.sum(inv_std * mean_dy_c, axis=(0, 1, 2)) * size
            return dx, dgamma, ops.sum(mean_dy, axis=(0, 1, 2)) * size

        return centred * scale + beta, grad

    return norm(x, gamma, beta)


@keras.saving.register_keras_serializable(package="tfphys")
class InstanceNormalization(keras.layers.Layer):
    """Instance normalisation (Ulyanov et al. 2016), the CoDAE conv unit's norm::

        y = γ · (x − μ) / sqrt(σ² + ε) + β,   μ, σ² = mean, variance of x over (H, W)

    per sample and channel; ``γ``, ``β`` have one entry per channel. Identical maths to
    ``keras.layers.GroupNormalization(groups=-1)`` (same weights, same ε), but computed on the 4-D
    tensor: Keras' version reshapes to 5-D, and TFLite/XNNPACK's 5-D MEAN is ~80× slower than the
    4-D one — the instance norms were 67–78 % of the exported model's latency (measured with
    ``tools/profile_tflite.py``) — and its NEG/SQUARE ops do not quantise to int8.

    Args:
        epsilon: added to the variance (Keras' GroupNormalization default, 1e-3).

    Input and output: ``(batch, H, W, C)``.
    """

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        # Tensors, not variables, into the custom gradient (cast reads the variable outside it).
        gamma, beta = ops.cast(self.gamma, x.dtype), ops.cast(self.beta, x.dtype)
        return _instance_norm(x, gamma, beta, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="tfphys")
class FourierFeatures(keras.layers.Layer):
    """A fixed Fourier encoding of low-dimensional coordinates (Tancik et al. 2020, NeRF's γ(p)).

    ``p ↦ [p, sin(π·2ʲ·p), cos(π·2ʲ·p)]`` for ``j = 0 … octaves − 1``, every component of ``p``
    separately: a decoder that regresses a sharp function of a few parameters learns it from these
    far faster than from ``p`` alone. The lowest frequency has period 2, so ``p ∈ [0, 1]`` is encoded
    one-to-one (``p`` itself is kept too). No weights.

    Input ``(batch, D)`` → output ``(batch, D · (1 + 2 · octaves))``.
    """

    def __init__(self, octaves=4, **kwargs):
        super().__init__(**kwargs)
        if int(octaves) < 0:
            raise ValueError(f"octaves must be ≥ 0, got {octaves}")
        self.octaves = int(octaves)

    def call(self, p):
        if not self.octaves:
            return p
        freqs = ops.convert_to_tensor(np.pi * 2.0 ** np.arange(self.octaves), dtype=p.dtype)
        angles = ops.reshape(p[..., :, None] * freqs, (-1, p.shape[-1] * self.octaves))
        return ops.concatenate([p, ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] * (1 + 2 * self.octaves))

    def get_config(self):
        return {**super().get_config(), "octaves": self.octaves}
