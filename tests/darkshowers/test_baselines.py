"""The trainable baselines of the CoDAE paper §5.2 (AE, Dirichlet VAE, CCT): sizes, the Dirichlet
latent and its KL, the scores, weak supervision, the supervised pipeline, training through
``tfphys-train``, save/load and builtin-only TFLite export."""

import h5py
import keras
import numpy as np
import pytest

from export.convert import convert, ops_used
from export.latency import interpreter, run_tflite
from tfphys import config as configs
from tfphys import registry, training
from tfphys.cli import train_main
from tfphys.darkshowers import baselines as bl
from tfphys.darkshowers.pipeline import autoencoder_datasets, classifier_datasets, contaminate, split_events
from tfphys.errors import TfphysError

TINY = {
    "ae": dict(encoder_filters=[[4, 4], [4, 0], [4, 0]], latent_dim=8, decoder_reshape=[9, 8, 4],
               decoder_filters=[4, 4, 4]),
    "dirvae": dict(hidden_units=16, concentration=[1.0, 0.25, 0.1], kl_weight=0.1),
    "cct": dict(tokenizer_filters=[4, 8], transformer_layers=1, num_heads=1, mlp_units=[8, 8],
                num_classes=3),
}


def _masks(n, p=0.05, seed=0):
    return (np.random.default_rng(seed).random((n, 72, 58, 1)) < p).astype(np.float32)


def _tiny_config(tmp_path, name, **data):
    cfg = configs.load(configs.default_config_path(name))
    cfg["model"] = dict(TINY[name])
    cfg["data"].update(val_fraction=0.25, **data)
    cfg["pipeline"].update(batch_size=8, shuffle_buffer=64)
    cfg["train"].update(epochs=2, seed=1)
    cfg["train"]["optimizer"]["learning_rate"] = 3e-3
    path = tmp_path / f"{name}.toml"
    configs.save(cfg, path)
    return path


# ------------------------------------------------------------------------------------ sizes
def test_paper_size_ae_has_600k_parameters_and_a_32d_latent():
    model = bl.build_ae()
    assert abs(model.count_params() - 600_000) < 0.01 * 600_000  # paper: "a total of 600k parameters"
    assert model.get_layer("encoder").output.shape == (None, 32)
    assert model.output.shape == (None, 72, 58, 1)
    # The TOML is the paper size too.
    assert registry.build(registry.get("ae"), configs.load(configs.default_config_path("ae"))["model"]
                          ).count_params() == model.count_params()


def test_paper_size_dirvae_and_cct_match_the_authors_sizes():
    dirvae = registry.build(registry.get("dirvae"), configs.load(configs.default_config_path("dirvae"))["model"])
    assert 2.0e6 < dirvae.count_params() < 2.3e6  # paper: "resulting in 2M parameters"
    assert dirvae.get_layer("decoder").count_params() == 3 * 72 * 58  # K × pixels, no bias
    cct = registry.build(registry.get("cct"), configs.load(configs.default_config_path("cct"))["model"])
    # the authors' summary: 406,084 without the 270 × 128 positional embedding it omits
    assert cct.count_params() == 406_084 + 270 * 128


# ------------------------------------------------------------------------- Dirichlet latent
def test_laplace_prior_matches_the_closed_form_and_the_authors_values():
    mean, var = bl.dirichlet_laplace([1.0, 1.0, 1.0])
    np.testing.assert_allclose(mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(var, 2.0 / 3.0)  # (1 − 2/3) + 3/9
    mean, var = bl.dirichlet_laplace([1.0, 0.25, 0.1])
    np.testing.assert_allclose(var, [2.0, 3.0, 5.0])  # printed by the authors' notebook
    np.testing.assert_allclose(mean, [1.2296265, -0.15666783, -1.0729586], rtol=1e-6)
    assert abs(mean.sum()) < 1e-12


def test_dirichlet_kl_is_zero_for_identical_distributions_and_matches_the_analytic_formula():
    layer = bl.DirichletLatent([1.0, 0.25, 0.1], kl_weight=1.0)
    mu0, var0 = bl.dirichlet_laplace([1.0, 0.25, 0.1])
    same = np.asarray(layer.kl(np.float32(mu0)[None], np.log(np.float32(var0))[None]))
    np.testing.assert_allclose(same, 0.0, atol=1e-5)

    rng = np.random.default_rng(3)
    mu, log_var = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(0, 0.5, (5, 3)).astype(np.float32)
    var = np.exp(log_var.astype(np.float64))
    analytic = 0.5 * np.sum(var / var0 + (mu - mu0) ** 2 / var0 - 1.0 + np.log(var0) - log_var, axis=1)
    np.testing.assert_allclose(np.asarray(layer.kl(mu, log_var)), analytic, rtol=1e-5)
    assert np.all(analytic > 0)


def test_dirichlet_latent_lies_on_the_simplex_is_deterministic_at_inference_and_adds_its_kl():
    layer = bl.DirichletLatent([1.0, 0.25, 0.1], kl_weight=0.1, seed=5)
    rng = np.random.default_rng(0)
    mu, log_var = rng.normal(size=(64, 3)).astype(np.float32), np.zeros((64, 3), np.float32)
    moments = np.concatenate([mu, log_var], axis=1)
    z_inf = np.asarray(layer(moments, training=False))
    np.testing.assert_allclose(z_inf.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(z_inf, np.exp(mu) / np.exp(mu).sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(z_inf, np.asarray(layer(moments, training=False)))
    assert not layer.losses  # no KL at inference

    z_train = np.asarray(layer(moments, training=True))
    np.testing.assert_allclose(z_train.sum(axis=1), 1.0, atol=1e-6)
    assert not np.allclose(z_train, z_inf)  # a sample, not the mean
    # seeded: a fresh layer with the same seed draws the same sample, the next call a new one
    again = bl.DirichletLatent([1.0, 0.25, 0.1], kl_weight=0.1, seed=5)
    np.testing.assert_array_equal(np.asarray(again(moments, training=True)), z_train)
    assert not np.array_equal(np.asarray(again(moments, training=True)), z_train)
    expected = 0.1 * np.asarray(layer.kl(mu, log_var)).mean()
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)


def test_dirvae_decoder_is_a_pixel_distribution_and_its_encoder_sees_normalised_images():
    keras.utils.set_random_seed(0)
    model = bl.build_dirvae(**TINY["dirvae"])
    x = _masks(4)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(p.reshape(4, -1).sum(axis=1), 1.0, atol=1e-5)
    # Normalised inside the model: doubling the image changes nothing.
    np.testing.assert_allclose(model.predict(2 * x, verbose=0), p, rtol=1e-5, atol=1e-9)
    z = bl.dirvae_latent(model, x)
    assert z.shape == (4, 3)
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-6)



def test_dirvae_learns_where_the_hits_are():
    # Events hit only in a 10 × 10 corner: the ideal p̂ is uniform there, H(x̃, p̂) → log(#hits).
    keras.utils.set_random_seed(0)
    x = np.zeros((64, 72, 58, 1), np.float32)
    x[:, :10, :10] = _masks(64, p=0.3, seed=2)[:, :10, :10]
    model = bl.build_dirvae(**TINY["dirvae"])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=bl.MultinomialNLL())
    before = bl.dirvae_score(x, model.predict(x, verbose=0)).mean()
    model.fit(x, x, batch_size=16, epochs=15, verbose=0)
    after = bl.dirvae_score(x, model.predict(x, verbose=0)).mean()
    assert before == pytest.approx(np.log(72 * 58), rel=0.05)  # starts near uniform over all pixels
    assert after < np.log(100) + 0.5  # ends near uniform over the corner: ≤ log 100 + slack


# ---------------------------------------------------------------------------------- scores
def test_scores_on_hand_made_reconstructions():
    x = np.zeros((2, 72, 58, 1), np.float32)
    x[0, :2, :2] = 1.0  # 4 hits
    x[1, 0, :8] = 1.0   # 8 hits
    np.testing.assert_allclose(bl.ae_score(x, x), 0.0)
    np.testing.assert_allclose(bl.ae_score(x, np.zeros_like(x)), [4.0, 8.0])
    np.testing.assert_allclose(bl.ae_score(x, [np.full_like(x, 0.5)]), 72 * 58 * 0.25)  # list outputs

    # DirVAE: a perfect pixel distribution scores its entropy log N; a uniform one log 4176.
    perfect = x / x.reshape(2, -1).sum(1)[:, None, None, None]
    np.testing.assert_allclose(bl.dirvae_score(x, perfect), np.log([4.0, 8.0]), rtol=1e-6)
    uniform = np.full_like(x, 1.0 / (72 * 58))
    np.testing.assert_allclose(bl.dirvae_score(x, uniform), np.log(72 * 58), rtol=1e-6)
    # The training NLL is the score times the number of hits.
    nll = bl.MultinomialNLL(reduction=None)(x, uniform)
    np.testing.assert_allclose(np.asarray(nll), np.log(72 * 58) * np.array([4.0, 8.0]), rtol=1e-5)

    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(bl.cct_score(x, probs), [0.1, 0.8])

    sse = bl.SummedSquaredError(reduction=None)(x, np.zeros_like(x))
    np.testing.assert_allclose(np.asarray(sse), [4.0, 8.0])


def test_sum_normalization_and_cct_layers():
    x = np.abs(np.random.default_rng(0).normal(size=(3, 10))).astype(np.float32)
    x[2] = 0.0
    y = np.asarray(bl.SumNormalization()(x))
    np.testing.assert_allclose(y[:2].sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(y[2], 0.0)  # an empty event stays empty

    tokens = np.tile(np.arange(4, dtype=np.float32), (2, 5, 1))  # 5 identical tokens
    np.testing.assert_allclose(np.asarray(bl.SequencePooling()(tokens)), tokens[:, 0], rtol=1e-6)
    a, b = np.ones((6, 5, 4), np.float32), np.full((6, 5, 4), 2.0, np.float32)
    depth = bl.StochasticDepth(0.5, seed=1)
    np.testing.assert_array_equal(np.asarray(depth([a, b], training=False)), 3.0)
    trained = np.asarray(depth([a, b], training=True))
    assert set(np.unique(trained)) <= {1.0, 5.0}  # dropped, or kept and rescaled by 1/(1 − 0.5)


# --------------------------------------------------------------------------------- pipelines
def test_contamination_puts_the_requested_fraction_of_signal_in_the_training_split(mixed_file):
    split = split_events(mixed_file, classes=(0,), val_fraction=0.25, seed=3)
    assert len(split.train) == 24
    mixed = contaminate(mixed_file, split, 0.2, seed=3)
    with h5py.File(mixed_file) as f:
        labels = f["label"][:]
    n_signal = int((labels[mixed.train] != 0).sum())
    assert n_signal == 6 and n_signal / len(mixed.train) == pytest.approx(0.2)
    assert set(split.train) <= set(mixed.train)
    np.testing.assert_array_equal(mixed.val, split.val)
    assert np.all(labels[mixed.val] == 0)  # validation stays background-only
    assert contaminate(mixed_file, split, 0.0) is split
    assert (labels[contaminate(mixed_file, split, 1e-4).train] != 0).sum() == 1  # at least one
    with pytest.raises(TfphysError, match="signal events"):
        contaminate(mixed_file, split, 0.9)

    train, _ = autoencoder_datasets(mixed_file, batch_size=64, seed=3, val_fraction=0.25,
                                    signal_fraction=0.2, augmentation=False)
    x, _ = next(iter(train))
    full = x.numpy().reshape(len(x), -1).mean(axis=1) == 1.0  # the fixture's signal hits every pixel
    assert len(x) == 30 and full.sum() == 6


def test_cct_pipeline_is_supervised_stratified_and_class_balanced(labelled_file):
    train, val = classifier_datasets(labelled_file, batch_size=64, seed=0, num_classes=3,
                                     val_fraction=0.25, augmentation=False)
    for ds, n in ((train, 36), (val, 12)):
        x, y, w = (t.numpy() for t in next(iter(ds)))
        assert x.shape == (n, 72, 58, 1) and y.shape == (n, 3)
        classes = y.argmax(axis=1)
        assert set(classes) == {0, 1} and (classes == 0).sum() == n // 2  # both classes, stratified
        assert w[classes == 0].sum() == pytest.approx(w[classes == 1].sum())
    with pytest.raises(TfphysError, match="both QCD"):
        classifier_datasets(labelled_file, batch_size=8, seed=0, max_events=24)  # QCD only


# ------------------------------------------------------------------ train / save / export
@pytest.mark.parametrize("name, data", [("ae", "qcd_file"), ("dirvae", "mixed_file"), ("cct", "labelled_file")])
def test_each_baseline_trains_with_tfphys_train(tmp_path, request, capsys, name, data):
    data_path = request.getfixturevalue(data)
    extra = {"signal_fraction": 0.1} if name == "dirvae" else {}
    cfg = _tiny_config(tmp_path, name, **extra)
    out = tmp_path / "run"
    assert train_main([name, "--config", str(cfg), "--data", str(data_path), "--out", str(out)]) == 0
    assert f"model: {out / 'model.keras'}" in capsys.readouterr().out
    for f in ("model.keras", "config.toml", "history.csv", "history.png"):
        assert (out / f).stat().st_size > 0
    history = training.read_history(out / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1]
    spec = registry.get(name)
    assert all(np.isfinite(row["loss"]) and np.isfinite(row[spec.monitor]) for row in history)
    if name == "ae":  # it learns. (The fixtures' hits are uniform at random, so the DirVAE's nearly
        # uniform initial p̂ is already close to optimal; the CCT's loss on 36 events is noisy.)
        assert history[-1]["loss"] < history[0]["loss"]
    saved = configs.load(out / "config.toml")
    assert saved["model_name"] == name  # the tiny [model] keys, and the schema's defaults for the others
    assert saved["model"] == {**configs.resolve(spec, {"model": {}}, partial=True)["model"], **TINY[name]}

    model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    x, is_signal = spec.labelled_sample(saved, request.getfixturevalue("labelled_file"), 8, 0)
    scores = spec.anomaly_score(x, model.predict(x, verbose=0))
    assert scores.shape == (16,) and np.all(np.isfinite(scores)) and set(is_signal) == {0, 1}


@pytest.mark.parametrize("name", ["ae", "dirvae", "cct"])
def test_save_load_round_trip_and_builtin_tflite_export(tmp_path, name):
    keras.utils.set_random_seed(0)
    model = registry.build(registry.get(name), TINY[name])
    x = _masks(3, seed=1)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)

    content = convert(loaded, "float32")
    ops = set(ops_used(content))
    assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    assert not [op for op in ops if "RANDOM" in op or "MULTINOMIAL" in op]  # deterministic inference
    interp = interpreter(content)
    lite = np.concatenate([run_tflite(interp, [x[i:i + 1]])[0] for i in range(len(x))])
    np.testing.assert_allclose(lite, expected, rtol=1e-4, atol=1e-5)


def test_tfphys_export_validates_the_dirvae_and_its_encoder_and_decoder(tmp_path, qcd_file, labelled_file, capsys):
    import json

    from export.cli import export_main

    keras.utils.set_random_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    registry.build(registry.get("dirvae"), TINY["dirvae"]).save(run / "model.keras")
    configs.save({"model_name": "dirvae", "data": {"path": str(qcd_file), "val_fraction": 0.25},
                  "model": TINY["dirvae"]}, run / "config.toml")
    rc = export_main([str(run), "--float32", "--iterations", "3", "--warmup", "1", "--data", str(labelled_file),
                      "--samples", "8"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((run / "report.json").read_text())
    assert report["anomaly_score"] == "dirvae_score" and set(report["submodels"]) == {"encoder", "decoder"}
    assert report["auroc_float32"] == pytest.approx(report["auroc_keras"], abs=1e-6)
