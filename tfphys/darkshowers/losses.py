"""Losses and metrics shared by the models (serialisable, so run dirs reload with safe_mode)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="tfphys")
class SummedBinaryCrossentropy(keras.losses.Loss):
    """Binary cross-entropy summed over all pixels, averaged over the batch (CoDAE §4.7).

    ``L = −(1/B) Σ_b Σ_p [x_p log x̂_p + (1 − x_p) log(1 − x̂_p)]`` with ``y_true = x`` the mask
    and ``y_pred = x̂`` the predicted probabilities (order matters: the target comes first).
    Shapes: ``(batch, H, W, C)`` both.
    """

    def __init__(self, name="summed_bce", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        per_pixel = ops.binary_crossentropy(y_true, y_pred)  # clips y_pred to [ε, 1 − ε]
        return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def ssim(y_true, y_pred):
    """Structural similarity per image (``tf.image.ssim``, max value 1): ``(batch,)``."""
    return tf.image.ssim(y_true, y_pred, max_val=1.0)


@keras.saving.register_keras_serializable(package="tfphys")
class SSIM(keras.metrics.MeanMetricWrapper):
    """Mean SSIM between target and reconstructed images; used for model selection (§4.7)."""

    def __init__(self, name="ssim", dtype=None):
        super().__init__(ssim, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
