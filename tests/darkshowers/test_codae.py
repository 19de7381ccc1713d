"""CoDAE / CAE: architecture as published, conditioning, serialisation, builtin-only TFLite."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.convert import convert
from export.latency import interpreter, run_tflite
from tfphys.darkshowers.codae import build_cae, build_codae
from tfphys.darkshowers.layers import SpatialConditioning
from tfphys.darkshowers.losses import SSIM, SummedBinaryCrossentropy
from tfphys.layers import GroupedConv2D, InstanceNormalization

TINY = dict(encoder_filters=[8, 8, 8, 8], mask_filters=[8, 8, 8, 8],
            decoder_filters=[8, 8, 8, 8], latent_channels=4)


def _masks(n=4, seed=0):
    return (np.random.default_rng(seed).random((n, 72, 58, 1)) < 0.05).astype(np.float32)


def test_paper_sized_codae_has_the_authors_parameter_counts():
    model = build_codae()
    # REFERENCE.md (authors' code): f_R ~612k, f_m ~271k, decoder ~764k parameters.
    assert model.get_layer("f_R").count_params() == 612_032
    assert model.get_layer("f_m").count_params() == 270_594
    assert model.get_layer("decoder").count_params() == 763_841
    assert model.get_layer("f_R").output.shape[1:] == (5, 4, 64)   # |Z| = 5 × 4 × 64
    assert model.get_layer("f_m").output.shape[1:] == (2,)         # |Z_m| = 2
    assert model.output.shape[1:] == (72, 58, 1)
    cae = build_cae()
    assert [layer.name for layer in cae.layers if isinstance(layer, keras.Model)] == ["f_R", "decoder"]
    assert cae.count_params() == 612_032 + 763_841 - sum(  # the decoder minus its 4 conditionings
        layer.count_params() for layer in model.get_layer("decoder").layers
        if isinstance(layer, SpatialConditioning))


@pytest.mark.parametrize("strides", [1, 2])
def test_grouped_conv_equals_keras_grouped_conv(strides):
    x = tf.random.stateless_normal((2, 9, 8, 16), seed=(1, 2))
    ours = GroupedConv2D(32, 3, strides=strides, groups=4, bias_initializer="random_normal")
    ref = keras.layers.Conv2D(32, 3, strides=strides, groups=4, padding="same")
    ours.build(x.shape)
    ref.build(x.shape)
    ref.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_spatial_conditioning_is_eq1():
    h = tf.random.stateless_normal((3, 5, 4, 6), seed=(3, 4))
    z = tf.random.stateless_normal((3, 2), seed=(5, 6))
    layer = SpatialConditioning(3)
    out = layer([h, z]).numpy()
    rows, cols = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4), indexing="ij")
    sb = np.concatenate([np.broadcast_to(z.numpy()[:, None, None, :], (3, 5, 4, 2)),
                         np.broadcast_to(np.stack([rows, cols], -1), (3, 5, 4, 2))], axis=-1)
    expected = layer.conv(tf.constant(sb, tf.float32)).numpy() * h.numpy()  # Conv(SB(z_m)) ⊙ h
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_loss_gradients_reach_the_mask_encoder_through_conditioning():
    model = build_codae(**TINY)
    x = tf.constant(_masks())
    with tf.GradientTape() as tape:
        loss = SummedBinaryCrossentropy()(x, model(x, training=True))
    f_m = model.get_layer("f_m").trainable_variables
    grads = tape.gradient(loss, f_m)
    assert all(g is not None for g in grads)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_summed_bce_is_the_paper_formula_and_order_matters():
    rng = np.random.default_rng(0)
    x = (rng.random((2, 6, 5, 1)) < 0.3).astype(np.float32)
    p = rng.uniform(0.05, 0.95, x.shape).astype(np.float32)
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3)).mean()
    loss = SummedBinaryCrossentropy()
    np.testing.assert_allclose(float(loss(x, p)), expected, rtol=1e-5)
    assert not np.isclose(float(loss(p, x)), expected)  # swapped arguments are a different number


def test_ssim_metric_is_one_for_a_perfect_reconstruction():
    x = _masks(2)
    metric = SSIM()
    metric.update_state(x, x)
    assert float(metric.result()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("build", [build_codae, build_cae])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, build):
    kwargs = dict(TINY) if build is build_codae else {k: v for k, v in TINY.items() if k != "mask_filters"}
    model = build(**kwargs)
    model.compile(optimizer=keras.optimizers.AdamW(weight_decay=0.1, clipnorm=1.0),
                  loss=SummedBinaryCrossentropy(), metrics=[SSIM()])
    x = _masks()
    model.fit(x, x, epochs=1, verbose=0)  # non-initial weights, optimizer state present
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("build", [build_codae, build_cae])
def test_paper_sized_models_convert_to_builtin_tflite_ops(build):
    keras.utils.set_random_seed(0)
    model = build()
    flatbuffer = convert(model, "float32")  # builtin ops only: raises if any op needs Flex (TF ≥ 2.20 has none)
    x = _masks(1, seed=3)
    (out,) = run_tflite(interpreter(flatbuffer), [x])  # the LiteRT runtime, as deployed
    # float32 both ways; XNNPACK sums in another order, which through ~30 normalised layers of an
    # untrained net moves probabilities by ~1e-4 (seen up to 1.2e-4).
    np.testing.assert_allclose(out, model.predict(x, verbose=0), atol=5e-4)


def test_instance_norm_equals_keras_group_norm_with_one_group_per_channel():
    x = tf.random.stateless_normal((3, 9, 7, 6), seed=(7, 8)) * 3.0 + 1.0
    ours, ref = InstanceNormalization(), keras.layers.GroupNormalization(groups=-1)
    ours.build(x.shape)
    ref.build(x.shape)
    weights = [np.linspace(0.5, 1.5, 6).astype(np.float32), np.linspace(-0.2, 0.3, 6).astype(np.float32)]
    ours.set_weights(weights)
    ref.set_weights(weights)
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), rtol=1e-4, atol=1e-5)


def test_instance_norm_closed_form_gradient_equals_keras_group_norm_autodiff():
    """The hand-written backward pass (tfphys.layers._instance_norm) against automatic
    differentiation of Keras' GroupNormalization(groups=-1), for x, γ and β, on a loss that is not
    linear in y (so mean(δ) and mean(δ·x̂) both matter)."""
    x = tf.random.stateless_normal((3, 9, 7, 6), seed=(1, 2)) * 3.0 + 1.0
    w = tf.random.stateless_normal((3, 9, 7, 6), seed=(3, 4))
    ours, ref = InstanceNormalization(), keras.layers.GroupNormalization(groups=-1)
    ours.build(x.shape)
    ref.build(x.shape)
    weights = [np.linspace(-1.5, 1.5, 6).astype(np.float32), np.linspace(-0.2, 0.3, 6).astype(np.float32)]
    ours.set_weights(weights)
    ref.set_weights(weights)
    grads = []
    for layer in (ours, ref):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * w) + tf.reduce_sum(y**3)
        grads.append(tape.gradient(loss, [x, *layer.trainable_variables]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    # the normalised output's gradient sums to zero over (H, W) for β-only losses: Σ ∂(Σy)/∂x = 0
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(ours(x))
    np.testing.assert_allclose(tape.gradient(s, x).numpy(), 0.0, atol=1e-5)
