"""The CoDAE's own layer: spatial multiplicative conditioning (Eq. 1, Algorithm 2)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tfphys")
class SpatialConditioning(keras.layers.Layer):
    """Spatial multiplicative conditioning of a feature map on a compact latent vector.

    CoDAE paper (Anzalone et al. 2024), Eq. (1) and Algorithm 2::

        r = Conv_K( SB(z_m) ) ⊙ h

    ``SB`` is the spatial broadcast of Watters et al. (2019, Algorithm 1): ``z_m`` is tiled over the
    ``H × W`` grid of ``h`` and two coordinate channels (``linspace(-1, 1)`` along rows and
    columns) are appended; a linear ``K × K`` convolution maps the ``D + 2`` channels to the ``C``
    channels of ``h``, and the result multiplies ``h`` element-wise.

    Args:
        kernel_size: ``K``, the size of the linear convolution (paper: 3).
        kernel_initializer: initializer of that convolution.

    Input: ``[h, z_m]`` with ``h`` of shape ``(batch, H, W, C)`` and ``z_m`` of shape ``(batch, D)``.
    Output: shape ``(batch, H, W, C)``.
    """

    def __init__(self, kernel_size=3, kernel_initializer="he_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        h_shape, z_shape = input_shape
        if len(h_shape) != 4 or len(z_shape) != 2:
            raise ValueError(
                f"SpatialConditioning expects [h (batch, H, W, C), z (batch, D)], got {input_shape}"
            )
        height, width, channels = h_shape[1:]
        if None in (height, width, channels):
            raise ValueError(f"SpatialConditioning needs a static H, W, C; got {h_shape}")
        rows, cols = np.meshgrid(
            np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width), indexing="ij"
        )
        # A constant, not a weight: the coordinate grid is part of the architecture.
        self._coords = np.stack([rows, cols], axis=-1)[None].astype("float32")
        self.conv = keras.layers.Conv2D(
            channels,
            self.kernel_size,
            padding="same",
            kernel_initializer=self.kernel_initializer,
            name="conv",
        )
        self.conv.build((None, height, width, z_shape[-1] + 2))

    def call(self, inputs):
        h, z = inputs
        # Broadcast by multiplication with ones: only MUL/CONCAT, i.e. builtin TFLite ops.
        ones = ops.ones_like(h[..., :1])
        tiled = ones * z[:, None, None, :]
        coords = ones * ops.convert_to_tensor(self._coords, dtype=h.dtype)
        return self.conv(ops.concatenate([tiled, coords], axis=-1)) * h

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            kernel_size=self.kernel_size,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
