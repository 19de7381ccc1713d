"""tfphys-export: round trips through LiteRT, builtin-only conversion, report schema, bad targets."""

import json

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from export.cli import export_main
from export.convert import ExportError, convert, flops, ops_used
from export.exporter import TOLERANCE
from export.latency import interpreter, run_tflite, summary
from export.report import REQUIRED_KEYS, SUBMODEL_KEYS, cpu_info
from tfphys import config as configs
from tfphys import registry
from tfphys.darkshowers.codae import build_cae, build_codae
from tfphys.darkshowers.pipeline import labelled_sample

TINY = dict(encoder_filters=[8, 8, 8, 8], decoder_filters=[8, 8, 8, 8], latent_channels=4)


def test_summary_statistics_on_known_timings():
    stats = summary(np.arange(1, 101, dtype=float)[::-1])  # 1..100 ms, order must not matter
    assert stats == {"p50": 50.5, "p90": pytest.approx(90.1), "p99": pytest.approx(99.01),
                     "mean": 50.5, "max": 100.0}
    assert summary([2.0, 4.0])["p50"] == 3.0
    with pytest.raises(ValueError, match=r"need ≥ 2 finite timings, got \(1,\)"):
        summary([1.0])
    with pytest.raises(ValueError, match=r"need ≥ 2 finite timings, got \(2,\)"):
        summary([1.0, float("nan")])


def _run_dir(tmp_path, build, data_path, **kwargs):
    keras.utils.set_random_seed(0)
    run = tmp_path / build.__name__
    run.mkdir()
    build(**kwargs).save(run / "model.keras")
    cfg = {"model_name": build.__name__.removeprefix("build_"),
           "data": {"path": str(data_path), "val_fraction": 0.25}, "model": kwargs}
    configs.save(cfg, run / "config.toml")
    return run


@pytest.mark.parametrize("build, extra, precision", [
    (build_codae, dict(mask_filters=[8, 8, 8, 8]), "float16"),
    (build_cae, {}, "float32"),
])
def test_export_round_trip_and_report_schema(tmp_path, qcd_file, labelled_file, capsys, build, extra, precision):
    run = _run_dir(tmp_path, build, qcd_file, **TINY, **extra)
    rc = export_main([str(run), f"--{precision}", "--iterations", "5", "--warmup", "1", "--data",
                      str(labelled_file), "--samples", "12", "--instances", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "WITHIN BUDGET" in out
    report = json.loads((run / "report.json").read_text())
    assert set(REQUIRED_KEYS) <= set(report)
    assert report["precision"] == precision and report["threads"] == 1 and report["batch_size"] == 1
    assert report["within_budget"] == (report["latency_ms"]["p99"] <= report["budget_ms"] == 100)
    assert set(report["latency_ms"]) == {"p50", "p90", "p99", "mean", "max"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    # the report's figures, recomputed from the files it names on the events it used (12 + 12)
    x, is_signal = labelled_sample(labelled_file, 12, seed=0)
    assert report["n_validation"] == report["n_auroc"] == len(x) == 24
    model = keras.saving.load_model(run / "model.keras")
    reference = model.predict(x, verbose=0)
    interp = interpreter((run / f"model_{precision}.tflite").read_bytes())
    exported = np.concatenate([run_tflite(interp, [x[i:i + 1]])[0] for i in range(len(x))])
    diff = np.abs(exported.astype(np.float64) - reference)
    assert report["max_abs_diff"] == pytest.approx(diff.max(), rel=1e-4, abs=1e-9)
    assert report["mean_abs_diff"] == pytest.approx(diff.mean(), rel=1e-4, abs=1e-9)
    assert report["tolerance"] == list(TOLERANCE[precision])  # sigmoid outputs: scale max(1, |y|) = 1
    score = registry.get(report["model"]).anomaly_score
    assert report["auroc_keras"] == pytest.approx(roc_auc_score(is_signal, score(x, reference)))
    assert report["auroc_exported"] == pytest.approx(roc_auc_score(is_signal, score(x, exported)))
    assert report["flops"] == flops(model)
    assert report["achieved_gflops"] == pytest.approx(report["flops"] / report["latency_ms"]["p50"] / 1e6)
    assert report["cpu"] == cpu_info()
    expected_subs = {"f_R", "f_m", "decoder"} if build is build_codae else {"f_R", "decoder"}
    assert set(report["submodels"]) == expected_subs
    for sub in report["submodels"].values():
        assert set(SUBMODEL_KEYS) <= set(sub)
    for name in ["model", *expected_subs]:
        for p in {precision, "float32"}:
            content = (run / f"{name}_{p}.tflite").read_bytes()
            assert not [op for op in ops_used(content) if op.startswith("Flex") or op == "CUSTOM"]
    assert (run / "report.md").read_text().startswith("**WITHIN BUDGET**")
    assert (run / "latency.png").stat().st_size > 0
    _check_hlt_figures(run, report, score(x, reference), score(x, exported), is_signal)


def _check_hlt_figures(run, report, keras_scores, exported_scores, is_signal, *, rate_hz=1e5, efficiency=0.01):
    """The report in HLT terms against what the files and the arithmetic of export.hlt give."""
    import tensorflow as tf

    from export import files, hlt

    wp = report["working_point"]
    threshold = hlt.threshold_for_efficiency(exported_scores[is_signal == 0], efficiency)
    assert wp["threshold"] == pytest.approx(threshold, rel=1e-6)
    assert wp["background_efficiency"] == hlt.efficiency(exported_scores[is_signal == 0], threshold)
    # the labelled file's signal is one mass point: SUEP (label 1) at 400 GeV
    assert wp["signal_efficiency"] == {"SUEP 400 GeV": {
        "events": int(is_signal.sum()), "efficiency": pytest.approx(hlt.efficiency(exported_scores[is_signal == 1],
                                                                                   threshold))}}
    assert wp["flips"] == hlt.flips(keras_scores, exported_scores, threshold) and wp["flip_events"] == len(is_signal)
    assert report["input_rate_hz"] == rate_hz
    for part in [report, *report["submodels"].values()]:
        assert part["farm_cores"]["wall"] == pytest.approx(rate_hz * part["latency_ms"]["mean"] / 1e3)
        assert part["farm_cores"]["cpu"] == pytest.approx(rate_hz * part["cpu_ms"]["mean"] / 1e3)
        assert part["cpu_ms"]["mean"] > 0 and part["cpu_ms"]["thread_mean"] <= part["cpu_ms"]["mean"] * 1.05
        c = part["concurrent"]
        assert c["events_per_s"] > 0 and c["threads_added"] == 0  # one thread, no pool of the runtime's own
        assert part["farm_cores"]["concurrent"] == pytest.approx(rate_hz * c["mean_ms"] / 1e3)
        assert part["io"]["layout"] == "NHWC" and all(t["dtype"] == "float32" for t in part["io"]["inputs"])
    assert report["io"]["inputs"][0]["shape"][1:] == [72, 58, 1]
    assert set(report["sha256"]) == {*report["files"], "latency.png", "report.md"}
    for name, digest in report["sha256"].items():
        assert files.sha256(run / name) == digest, name
    assert report["versions"]["tensorflow"] == tf.__version__ and set(report["versions"]) == {
        "tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"}
    assert not [p.name for p in run.rglob("*") if ".tmp" in p.name or ".old" in p.name]  # no temporary left
    markdown = (run / "report.md").read_text()
    assert "## In HLT terms" in markdown and "| SUEP 400 GeV | " in markdown


def test_an_untrustworthy_int8_export_is_an_error_not_a_report(tmp_path, qcd_file, labelled_file, capsys):
    # An untrained 8-filter CAE quantises badly (its instance norms see near-zero variances):
    # the validation against Keras must stop the export before any report is written.
    run = _run_dir(tmp_path, build_cae, qcd_file, **TINY)
    rc = export_main([str(run), "--int8", "--iterations", "5", "--warmup", "1", "--data",
                      str(labelled_file), "--samples", "12", "--no-submodels"])
    err = capsys.readouterr().err
    assert rc == 1 and "at int8: outputs differ from Keras" in err and "not trustworthy" in err
    assert not (run / "report.json").exists()
    assert (run / "model_int8.tflite").exists()  # the file is kept for inspection


def test_float16_halves_the_file_of_the_paper_sized_mask_encoder():
    f_m = build_codae().get_layer("f_m")
    ratio = len(convert(f_m, "float16")) / len(convert(f_m, "float32"))
    assert ratio <= 0.52


def test_a_model_needing_a_non_builtin_op_names_the_op_and_the_layer():
    import tensorflow as tf

    class Erfinv(keras.layers.Layer):
        def call(self, x):
            return tf.math.erfinv(0.1 * x)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Erfinv(name="quantile_layer")(keras.layers.Dense(4)(inputs)), name="m")
    with pytest.raises(ExportError, match=r"needs tf\.Erfinv in layer\(s\) quantile_layer"):
        convert(model, "float32")


@pytest.mark.parametrize("kind, message", [
    ("missing", "does not exist"),
    ("empty_dir", "is not a tfphys-train run dir: it has no config.toml"),
    ("corrupt", "could not load a Keras model"),
    ("text", "neither a run dir nor a .keras file"),
])
def test_bad_targets_give_one_clear_line(tmp_path, capsys, kind, message):
    target = tmp_path / {"missing": "nope", "empty_dir": "run", "corrupt": "m.keras", "text": "notes.txt"}[kind]
    if kind == "empty_dir":
        target.mkdir()
    elif kind == "corrupt":
        target.write_bytes(b"PK\x03\x04 this is not a model")
    elif kind == "text":
        target.write_text("hello")
    assert export_main([str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfphys-export: error:") and message in err[0]


def test_int8_calibration_follows_the_converters_input_order():
    # The converter puts the decoder's z_m before z; calibration data in Keras order would be fed
    # to the wrong inputs (it failed with a CONCATENATION shape error before this was handled).
    from export.convert import submodel_inputs
    from export.latency import interpreter, keras_input_order, run_tflite

    keras.utils.set_random_seed(0)
    model = build_codae(**TINY, mask_filters=[8, 8, 8, 8])
    decoder = model.get_layer("decoder")
    x = (np.random.default_rng(0).random((8, 72, 58, 1)) < 0.05).astype("float32")
    inputs = submodel_inputs(model, "decoder", [x])
    order = keras_input_order(interpreter(convert(decoder, "float32")), [t.name for t in decoder.inputs],
                              [t.shape[1:] for t in decoder.inputs])
    assert order == [1, 0]
    calibration = [[a[i:i + 1] for a in inputs] for i in range(8)]
    with pytest.raises(ExportError, match="CONCATENATION"):
        convert(decoder, "int8", calibration)  # Keras order: the bug this guards against
    out = run_tflite(interpreter(convert(decoder, "int8", calibration, order)), [a[:1] for a in inputs])[0]
    # fed in the converter's order, the int8 decoder computes the Keras decoder's function (this untrained
    # 8-filter decoder quantises coarsely: measured correlation 0.81, mean |Δ| 0.09 over the 72 × 58 pixels)
    expected = decoder.predict([a[:1] for a in inputs], verbose=0)
    assert out.shape == (1, 72, 58, 1) and np.corrcoef(out.ravel(), expected.ravel())[0, 1] > 0.7
    assert np.abs(out - expected).mean() < 0.15


def test_grouped_convolutions_export_as_one_grouped_conv2d_with_the_same_outputs():
    # GroupedConv2D (g SPLIT/CONV_2D/CONCATENATION branches) is rewritten at export as
    # Conv2D(groups=g): one CONV_2D per layer, and the same function of the input.
    from export.convert import for_deployment
    from export.latency import interpreter, run_tflite
    from tfphys.layers import GroupedConv2D

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 10, 8), name="x")
    h = GroupedConv2D(8, 3, groups=4, name="g1")(inputs)
    sub_in = keras.Input((12, 10, 8))
    sub = keras.Model(sub_in, GroupedConv2D(16, 3, strides=2, groups=2, name="g2")(sub_in), name="sub")
    model = keras.Model(inputs, sub(keras.layers.LeakyReLU()(h)), name="m")
    for v in model.weights:  # non-zero biases, so that a dropped bias would show
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype("float32"))
    deploy = for_deployment(model)
    assert deploy is not model and not any(isinstance(layer, GroupedConv2D) for layer in deploy.layers)
    x = np.random.default_rng(2).normal(size=(3, 12, 10, 8)).astype("float32")
    np.testing.assert_allclose(deploy.predict(x[:1], verbose=0), model.predict(x[:1], verbose=0), atol=1e-5)
    content = convert(deploy, "float32")
    assert "SPLIT" not in ops_used(content) and "CONCATENATION" not in ops_used(content)
    assert "SPLIT" in ops_used(convert(model, "float32"))
    lite = run_tflite(interpreter(content), [x[:1]])[0]
    np.testing.assert_allclose(lite, model.predict(x[:1], verbose=0), atol=1e-4)
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert for_deployment(plain) is plain  # nothing to rewrite: the model itself


def test_outputs_of_a_multi_output_export_are_matched_to_keras_outputs():
    # LiteRT lists this model's outputs in reverse; run_tflite must return them in Keras' order,
    # and the exporter must compare every output, not only the first one it is handed.
    from export.exporter import _compare
    from export.latency import interpreter, run_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, [keras.layers.Dense(5, name="big")(inputs),
                                 keras.layers.Dense(2, name="small")(inputs),
                                 keras.layers.Dense(5, name="big2")(inputs)])
    x = np.random.default_rng(0).normal(size=(1, 3)).astype("float32")
    lite = run_tflite(interpreter(convert(model, "float32")), [x])
    keras_out = model.predict(x, verbose=0)
    assert [o.shape for o in lite] == [(1, 5), (1, 2), (1, 5)]
    for a, b in zip(lite, keras_out):
        np.testing.assert_allclose(a, b, atol=1e-5)
    wrong = [lite[0], lite[1], lite[2] + 1.0]  # only the last output is off
    with pytest.raises(ExportError, match="output 2"):
        _compare("m", "float32", [np.asarray(o) for o in keras_out], wrong)


def test_int8_keeps_the_output_sigmoid_float_so_small_probabilities_survive():
    # An int8 sigmoid has a fixed output step of 1/256: p ≈ 3e-4 comes out as 0, and log p (the
    # BCE anomaly score of a hit pixel) as -inf. The exporter keeps the output ops float.
    from export.convert import output_names
    from export.latency import interpreter, run_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(
        4, activation="sigmoid", bias_initializer=keras.initializers.Constant(-8.0))(h))
    rng = np.random.default_rng(0)
    calibration = [[rng.normal(size=(1, 6)).astype("float32")] for _ in range(32)]
    x = calibration[0][0]
    p = model.predict(x, verbose=0)
    assert np.all(p < 1 / 256)
    plain = run_tflite(interpreter(convert(model, "int8", calibration)), [x])[0]
    assert np.all(plain == 0)  # what a fully int8 graph does to small probabilities
    names = output_names(convert(model, "float32"))
    content = convert(model, "int8", calibration, keep_float=names)
    kept = run_tflite(interpreter(content), [x])[0]
    np.testing.assert_allclose(kept, p, rtol=0.2)
    assert "FULLY_CONNECTED" in ops_used(content) and "LOGISTIC" in ops_used(content)
