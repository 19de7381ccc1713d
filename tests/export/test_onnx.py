"""tfphys-export --onnx: round trips through ONNX Runtime for every family's exportable model (tiny
sizes), the CMSSW session options, one-line errors, and the command on a trained run."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import onnx
import pytest
from sklearn.metrics import roc_auc_score

from export import to_onnx
from export.cli import export_main
from export.convert import ExportError, submodels
from tests.conftest import TINY_MODELS
from tests.export.test_export import _check_hlt_figures
from tfphys import config as configs
from tfphys import registry

#: the tiny [model] tables of the exportable models (shared with the other tests: tests/conftest.py)
TINY = {name: cfg for name, cfg in TINY_MODELS.items() if registry.get(name).exportable}
#: measured max |Δ| vs Keras (batch 1 and 3): ≤ 2.5e-5 (the CoDVAE's sigmoid outputs), pinned with margin
ATOL = 5e-5
#: the same for a model after a few epochs of training (larger weights): measured 5.2e-5 on CI's machine
ATOL_TRAINED = 2e-4
#: a stage line of the export's progress on stderr (``tfphys-export: 11:13:37 model: converting …``)
PROGRESS = re.compile(r"^tfphys-export: \d\d:\d\d:\d\d ")


def _stderr_lines(captured: str) -> list[str]:
    """stderr without the export's stage lines, which must all come before whatever else it says."""
    lines = captured.strip().splitlines()
    others = [i for i, line in enumerate(lines) if not PROGRESS.match(line)]
    assert others == list(range(len(lines) - len(others), len(lines))), lines  # no stage line after them
    return [lines[i] for i in others]


def _inputs(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.random((n, *t.shape[1:])) < 0.1).astype("float32") if t.shape[1:] == (72, 58, 1)
            else rng.normal(size=(n, *t.shape[1:])).astype("float32") for t in model.inputs]


def _perturbed(model):
    """Non-zero biases and norm shifts/scales, so that a dropped bias or a wrong ε/γ would show."""
    rng = np.random.default_rng(1)
    for v in model.weights:
        if any(k in v.path for k in ("bias", "beta", "gamma")):
            v.assign(v + 0.1 * rng.normal(size=v.shape).astype("float32"))
    return model


def _keras(model, inputs):
    out = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name", sorted(TINY))
def test_round_trip_of_every_familys_exportable_model_with_a_dynamic_batch(name):
    spec = registry.get(name)
    assert spec.exportable
    keras.utils.set_random_seed(0)
    model = _perturbed(registry.build(spec, TINY[name]))
    parts = {"model": model, **(submodels(model) if name in ("codae", "codvae") else {})}
    if name in ("codae", "codvae"):
        assert set(parts) == {"model", "f_R", "f_m", "decoder"}
    for part, m in parts.items():
        x = _inputs(m, 3)
        proto = to_onnx.convert(m)
        assert next(o.version for o in proto.opset_import if o.domain == "") == to_onnx.OPSET == 17
        assert [i.name for i in proto.graph.input] == [t.name for t in m.inputs]
        for value in [*proto.graph.input, *proto.graph.output]:  # batch dimension dynamic, named
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
            assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        ops = {n.op_type for n in proto.graph.node}
        assert "Split" not in ops and all(n.domain == "" for n in proto.graph.node), (part, ops)
        session = to_onnx.session(proto.SerializeToString())
        reference = _keras(m, x)
        for batch in (1, 3):
            out = to_onnx.run(session, [a[:batch] for a in x])
            assert len(out) == len(reference)
            for o, r in zip(out, reference):
                assert o.shape == r[:batch].shape and o.dtype == np.float32
                np.testing.assert_allclose(o, r[:batch], atol=ATOL, rtol=1e-5, err_msg=f"{name} {part}")


@pytest.mark.parametrize("perturbed", [False, True])
def test_codae_graph_has_one_grouped_conv_per_layer_and_fused_instance_norms(perturbed):
    # untrained (γ = 1, β = 0: tf2onnx folds the Mul and Add away) and with non-trivial γ, β
    keras.utils.set_random_seed(0)
    model = registry.build(registry.get("codae"), TINY["codae"])
    if perturbed:
        _perturbed(model)
    proto = to_onnx.convert(model)
    counts = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    groups = {}
    for node in proto.graph.node:
        for a in node.attribute:
            if node.op_type == "Conv" and a.name == "group" and a.i > 1:
                groups[a.i] = groups.get(a.i, 0) + 1
    # the 25 GroupedConv2D layers (22 with g = 4 in f_R and the decoder, 3 with g = 2 in f_m) are one Conv
    # with `group` each, not split / g convs / concat; all 28 instance norms are one node each
    assert groups == {4: 22, 2: 3} and "Split" not in counts
    assert counts["InstanceNormalization"] == 28
    assert not {"GlobalAveragePool", "Sqrt", "Reciprocal", "Sub"} & set(counts)
    assert counts["Transpose"] <= 5  # NHWC in and out; no transpose around every conv


def test_instance_norms_spelt_with_reducemean_are_fused_too():
    # tf2onnx writes the norms' spatial means as GlobalAveragePool; the same mean may also come as a
    # ReduceMean over (H, W). Once, on a heavily loaded machine, 27 of the 28 norms were fused (not
    # reproduced since; a ReduceMean spelling is a guess at the cause, not a diagnosis): both are matched.
    from onnx import helper

    keras.utils.set_random_seed(0)
    f_m = _perturbed(registry.build(registry.get("codae"), TINY["codae"])).get_layer("f_m")
    proto = to_onnx.convert(f_m, fuse_norms=False)
    for node in proto.graph.node:
        if node.op_type == "GlobalAveragePool":
            node.op_type = "ReduceMean"
            node.attribute.extend([helper.make_attribute("axes", [2, 3]), helper.make_attribute("keepdims", 1)])
    x = _inputs(f_m, 3)
    assert to_onnx.fuse_instance_norms(proto) == 4
    assert {n.op_type for n in proto.graph.node} & {"ReduceMean", "Sqrt", "Sub"} == set()
    np.testing.assert_allclose(to_onnx.run(to_onnx.session(proto.SerializeToString()), x)[0], _keras(f_m, x)[0],
                               atol=ATOL, rtol=1e-5)


def test_session_options_are_cmssws_one_thread_sequential(tmp_path):
    import onnxruntime as ort

    inputs = keras.Input((6,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="m")
    path = tmp_path / "m.onnx"
    path.write_bytes(to_onnx.convert(model).SerializeToString())
    threads_before = len(os.listdir("/proc/self/task"))
    session = to_onnx.session(path)
    to_onnx.run(session, [np.ones((2, 6), np.float32)])
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert len(os.listdir("/proc/self/task")) == threads_before  # no thread pool spawned
    assert to_onnx.SESSION_OPTIONS == {"intra_op_num_threads": 1, "inter_op_num_threads": 1,
                                       "execution_mode": "ORT_SEQUENTIAL"}


def test_a_corrupt_onnx_file_is_one_error_line(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07 this is not an ONNX model")
    with pytest.raises(ExportError) as err:
        to_onnx.session(path)
    message = str(err.value)
    assert message.startswith(f"ONNX Runtime cannot load {path}: ") and "\n" not in message


def test_a_model_tf2onnx_cannot_convert_names_the_op_and_the_layer():
    import tensorflow as tf

    class Erfinv(keras.layers.Layer):
        def call(self, x):
            return tf.math.erfinv(0.1 * x)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Erfinv(name="quantile_layer")(keras.layers.Dense(4)(inputs)), name="m")
    with pytest.raises(ExportError) as err:
        to_onnx.convert(model)
    assert str(err.value) == ("m cannot be exported to ONNX (opset 17): tf2onnx has no conversion for Erfinv "
                              "in layer(s) quantile_layer")


def _tiny_run(tmp_path, data):
    run = tmp_path / "run"
    run.mkdir()
    keras.utils.set_random_seed(0)
    _perturbed(registry.build(registry.get("cae"), TINY["cae"])).save(run / "model.keras")
    (run / "config.toml").write_text(f'model_name = "cae"\n[data]\npath = "{data}"\nval_fraction = 0.25\n'
                                     f"[model]\nencoder_filters = [8, 8, 8, 8]\ndecoder_filters = [8, 8, 8, 8]\n"
                                     f"latent_channels = 4\n")
    return run


def test_a_diverging_onnx_export_is_one_error_line_and_no_report(tmp_path, qcd_file, labelled_file,
                                                                  capsys, monkeypatch):
    from onnx import helper, numpy_helper

    convert = to_onnx.convert

    def off_by_a_half(model, opset=to_onnx.OPSET):  # what a wrong conversion would give
        proto = convert(model, opset)
        out = proto.graph.output[0]
        for node in proto.graph.node:
            node.output[:] = [f"{o}_raw" if o == out.name else o for o in node.output]
        proto.graph.initializer.append(numpy_helper.from_array(np.float32(0.5), "half"))
        proto.graph.node.append(helper.make_node("Add", [f"{out.name}_raw", "half"], [out.name]))
        return proto

    monkeypatch.setattr(to_onnx, "convert", off_by_a_half)
    run = _tiny_run(tmp_path, qcd_file)
    rc = export_main([str(run), "--onnx", "--iterations", "3", "--warmup", "0", "--data", str(labelled_file),
                      "--samples", "3", "--no-submodels"])
    err = _stderr_lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("tfphys-export: error: model (one batch of 6) at onnx: outputs differ from Keras "
                             "by up to 0.5")
    assert err[0].endswith("the export is not trustworthy")
    assert not (run / "report.json").exists() and (run / "model.onnx").exists()


def test_an_onnx_file_onnx_runtime_cannot_load_stops_the_command_with_one_line(tmp_path, qcd_file, labelled_file,
                                                                               capsys, monkeypatch):
    class Corrupt:  # what a truncated or garbled conversion would give
        def SerializeToString(self):
            return b"\x08\x07 this is not an ONNX model"

    monkeypatch.setattr(to_onnx, "convert", lambda model, *args, **kwargs: Corrupt())
    run = _tiny_run(tmp_path, qcd_file)
    rc = export_main([str(run), "--onnx", "--iterations", "3", "--warmup", "0", "--data", str(labelled_file),
                      "--samples", "3", "--no-submodels"])
    err = _stderr_lines(capsys.readouterr().err)
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith("tfphys-export: error: ONNX Runtime cannot load the model: ")
    assert not (run / "report.json").exists() and not [p for p in run.rglob("*") if ".tmp" in p.name]


def test_tfphys_export_onnx_on_a_trained_run_in_a_fresh_process(tmp_path, tiny_config, qcd_file, labelled_file):
    env = dict(os.environ, TFPHYS_CACHE=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3")
    bin_dir = Path(sys.executable).parent
    run = tmp_path / "run"
    train = subprocess.run([bin_dir / "tfphys-train", "codae", "--config", tiny_config, "--data", qcd_file,
                            "--out", run], env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    result = subprocess.run([bin_dir / "tfphys-export", run, "--onnx", "--iterations", "5", "--warmup", "1",
                             "--data", labelled_file, "--samples", "6", "--rate-hz", "50e3",
                             "--background-efficiency", "0.5"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("WITHIN BUDGET — codae onnx p99 ")
    report = json.loads((run / "report.json").read_text())
    assert report["precision"] == "onnx" and report["threads"] == 1 and report["n_validation"] == 12
    assert report["onnx"]["opset"] == 17 and report["onnx"]["layout"] == "NHWC"
    assert report["onnx"]["inputs"] == [{"name": "mask", "shape": ["batch", 72, 58, 1], "dtype": "float32"}]
    assert report["onnx"]["outputs"] == [{"name": "decoder", "shape": ["batch", 72, 58, 1], "dtype": "float32"}]
    assert report["onnx"]["session_options"] == to_onnx.SESSION_OPTIONS
    assert {"Conv", "InstanceNormalization"} <= set(report["ops"]) and "Split" not in report["ops"]
    assert set(report["submodels"]) == {"f_R", "f_m", "decoder"}
    for name in ("model", "f_R", "f_m", "decoder"):
        assert (run / f"{name}.onnx").stat().st_size > 0
    assert {"model.onnx", "model_float32.tflite", "f_m.onnx", "triton/codae/config.pbtxt",
            "triton/codae_f_m/1/model.onnx", "cmssw/codae_onnx_producer.cc"} <= set(report["files"])
    for name in report["files"]:
        assert (run / name).is_file(), name
    # the report's figures, recomputed here from model.onnx on the same 6 + 6 events
    spec = registry.get("codae")
    x, is_signal = spec.labelled_sample(configs.load(run / "config.toml"), labelled_file, 6, 0)
    reference = keras.saving.load_model(run / "model.keras").predict(x, verbose=0)
    exported = to_onnx.run_all(to_onnx.session(run / "model.onnx"), [x])[0]
    diff = np.abs(exported.astype(np.float64) - reference)
    assert report["max_abs_diff"] == pytest.approx(diff.max(), rel=1e-3, abs=1e-9) and diff.max() < ATOL_TRAINED
    assert report["auroc_exported"] == pytest.approx(roc_auc_score(is_signal, spec.anomaly_score(x, exported)))
    assert abs(report["auroc_exported"] - report["auroc_keras"]) < 1e-9  # identical ranking of 12 events
    markdown = (run / "report.md").read_text()
    assert markdown.startswith("**WITHIN BUDGET** — codae onnx p99")
    assert "| ONNX Runtime float32 |" in markdown and "ONNX opset 17, layout NHWC" in markdown
    # the report in HLT terms: 6 background events at efficiency 0.5 → the 3 highest fire
    assert report["working_point"]["background_efficiency"] == 0.5
    assert report["working_point"]["background_efficiency_asked"] == 0.5
    assert report["concurrent"]["instances"] == len(os.sched_getaffinity(0))
    assert "`f_m` (pre-filter)" in markdown and "farm" not in result.stderr
    assert "working point: score > " in result.stdout
    _check_hlt_figures(run, report, spec.anomaly_score(x, reference), spec.anomaly_score(x, exported), is_signal,
                       rate_hz=5e4, efficiency=0.5)


def test_triton_model_directory_and_cmssw_snippet_beside_the_onnx_file(tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2  # Triton's own model_config.proto: a misspelt field fails

    keras.utils.set_random_seed(0)
    model = registry.build(registry.get("codae"), TINY["codae"]).get_layer("f_m")
    content = to_onnx.convert(model).SerializeToString()
    files = to_onnx.write_integration(tmp_path, "codae_f_m", content)
    assert files == ["triton/codae_f_m/config.pbtxt", "triton/codae_f_m/1/model.onnx",
                     "cmssw/codae_f_m_onnx_producer.cc"]
    assert (tmp_path / files[1]).read_bytes() == content
    config = text_format.Parse((tmp_path / files[0]).read_text(), model_config_pb2.ModelConfig())
    assert config.name == "codae_f_m" and config.backend == "onnxruntime" and config.max_batch_size == 0
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [("mask", 11, [-1, 72, 58, 1])]  # FP32
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [("z_m", 11, [-1, 2])]
    assert [(g.count, g.kind) for g in config.instance_group] == [(1, 2)]  # one KIND_CPU instance
    assert {k: v.string_value for k, v in config.parameters.items()} == {"intra_op_thread_count": "1",
                                                                         "inter_op_thread_count": "1"}
    # names and dims Triton reads are those ONNX Runtime sees in the file
    session = to_onnx.session(content)
    assert [i.name for i in session.get_inputs()] == ["mask"] and [o.name for o in session.get_outputs()] == ["z_m"]
    snippet = (tmp_path / files[2]).read_text()
    for expected in ("edm::GlobalCache<cms::Ort::ONNXRuntime>", "edm::FileInPath", 'globalCache()->run({"mask"}',
                     "std::vector<float>(4176, 0.f)", "{1, 72, 58, 1}", '{"z_m"}', "((h * W + w) * C + c)",
                     "DEFINE_FWK_MODULE(CodaeFMONNXProducer)",
                     "ONNXRuntime::defaultSessionOptions(cms::Ort::Backend::cpu)", "fillDescriptions",
                     "data package as MyAnalysis/MyTrigger/data/codae_f_m.onnx"):
        assert expected in snippet, expected
