"""``tfphys-score shard … --runtime litert``: the run's exported files, run by LiteRT, give the
Keras scores; the shard/merge contract is unchanged; an unexported run is one error line; and the
NumPy Algorithm 1 that scoring reads through (``pipeline.load_masks``) gives the TF pipeline's masks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.conftest import TINY_MODELS, sparse_events
from tfphys import config as configs
from tfphys import registry, runtime, scoring
from tfphys.cli import score_main
from tfphys.darkshowers import evaluate, pipeline
from tfphys.darkshowers import format as formats
from tfphys.errors import TfphysError

#: |LiteRT float32 − Keras| per score column, in units of the column's largest |Keras score| (≥ 1)
#: (the paper-size CoDAE on 64 toy events: ≤ 4e-6); SAE-mask, a pixel count, see the test
TOLERANCE = 1e-4
SCORE = "import sys; from tfphys.cli import score_main; sys.exit(score_main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An untrained tiny CoDAE run dir (it has f_m, so the Z_m scores) with the float32 files
    ``tfphys-export`` writes that scoring reads: the model and f_m, converted as the exporter converts
    them (``export.convert``; the whole export's validation, timing and report would take 4× longer)."""
    from export import convert

    run = tmp_path_factory.mktemp("runtime") / "codae"
    run.mkdir()
    cfg = configs.load(configs.default_config_path("codae"))
    cfg["model_name"] = "codae"
    cfg["model"].update(TINY_MODELS["codae"])
    model = registry.build(registry.get("codae"), dict(cfg["model"]))
    model.save(run / "model.keras")
    configs.save(cfg, run / "config.toml")
    parts = {"model": model, "f_m": model.get_layer("f_m")}  # the files scoring reads (f_R, decoder: unused)
    for name, part in parts.items():  # export.exporter's file names
        (run / f"{name}_float32.tflite").write_bytes(convert.convert(convert.for_deployment(part), "float32"))
    return run


def _scores(path):
    with h5py.File(path, "r") as f:
        return f["index"][:], {k: f["scores"][k][:] for k in f["scores"]}, dict(f.attrs)


def test_litert_scores_equal_keras_scores_for_every_column(exported, labelled_file, tmp_path):
    keras_file = scoring.score_shard(exported, labelled_file, tmp_path / "keras", progress=False)
    litert_file = scoring.score_shard(exported, labelled_file, tmp_path / "litert", runtime="litert",
                                      progress=False)
    _, reference, keras_attrs = _scores(keras_file)
    _, got, attrs = _scores(litert_file)
    assert (keras_attrs["runtime"], attrs["runtime"]) == ("keras", "litert-float32")
    assert sorted(got) == sorted(reference) and {"Z1", "Z2", "BCE", "SSE"} <= set(got)
    for name, values in reference.items():
        diff = np.abs(got[name] - values)
        if name == "SAE-mask":  # a count of pixels over x̂ = 0.5: one just at 0.5 may cross it
            assert diff.max() <= 2 and (diff > 0).mean() <= 0.1, diff
            continue
        assert diff.max() <= TOLERANCE * max(1.0, float(np.abs(values).max())), name


def test_litert_shards_in_fresh_processes_merge_to_every_event_once(exported, labelled_file, tmp_path):
    out = tmp_path / "scores"
    procs = [subprocess.Popen([sys.executable, "-c", SCORE, "shard", str(exported), "--data", str(labelled_file),
                               "--out", str(out), "--shard", f"{i}/2", "--runtime", "litert"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
             for i in range(2)]
    for i, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        assert f"shard {i}/2: {out / scoring.SHARD_NAME.format(i=i, n=2)}" in stdout
    merged = scoring.merge(out)
    index, scores, attrs = _scores(merged)
    with formats.open_darkshowers(labelled_file) as f:
        n = len(f["label"])
    assert index.tolist() == list(range(n)) and attrs["runtime"] == "litert-float32"
    whole = scoring.score_shard(exported, labelled_file, tmp_path / "whole", runtime="litert", progress=False)
    _, one_shard, _ = _scores(whole)
    for name, values in one_shard.items():  # the same interpreter arithmetic, event by event
        np.testing.assert_array_equal(scores[name], values, err_msg=name)
    # a Keras shard and a LiteRT shard of one file are not one set of scores
    mixed = tmp_path / "mixed"
    scoring.score_shard(exported, labelled_file, mixed, shard=(0, 2), runtime="litert", progress=False)
    scoring.score_shard(exported, labelled_file, mixed, shard=(1, 2), progress=False)
    with pytest.raises(TfphysError, match="shard files disagree on runtime: keras, litert-float32"):
        scoring.merge(mixed)


def test_a_run_without_the_exported_file_is_one_error_line(exported, labelled_file, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.keras", "config.toml"):
        shutil.copy(exported / name, bare / name)
    assert score_main(["shard", str(bare), "--data", str(labelled_file), "--out", str(tmp_path / "o"),
                       "--runtime", "litert"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"tfphys-score: error: {bare} has no exported model_float32.tflite (--runtime litert scores "
                     f"with the files of tfphys-export): run `tfphys-export {bare} --float32` first, or score "
                     f"with --runtime keras"]
    assert score_main(["shard", str(bare), "--data", str(labelled_file), "--out", str(tmp_path / "o"),
                       "--runtime", "litert", "--precision", "float16"]) == 1
    assert "run `tfphys-export " + str(bare) + "` first" in capsys.readouterr().err
    shutil.copy(exported / "model_float32.tflite", bare)  # the model but not its f_m: --no-submodels
    with pytest.raises(TfphysError, match=r"no exported f_m_float32.tflite \(exported with --no-submodels\?\)"):
        evaluate.model_scores(runtime.open_exported(bare), registry.get("codae"),
                              np.zeros((1, *pipeline.MASK_SHAPE), np.float32))
    for name in os.listdir(exported):
        if name.endswith(".tflite"):
            shutil.copy(exported / name, bare)
    runtime.open_exported(bare)
    later = os.stat(bare / "model.keras").st_mtime + 10  # retrained after the export
    os.utime(bare / "model.keras", (later, later))
    with pytest.raises(TfphysError, match="is older than model.keras"):
        runtime.open_exported(bare)


def test_codvae_is_not_scored_without_its_keras_latent_layer(exported):
    model = runtime.open_exported(exported)
    with pytest.raises(TfphysError, match="codvae: its KL scores need the Keras model"):
        evaluate.model_scores(model, registry.get("codvae"), np.zeros((1, *pipeline.MASK_SHAPE), np.float32))


def test_numpy_algorithm_1_gives_the_tensorflow_masks(mixed_file, tmp_path):
    edges = tmp_path / "edges.h5"  # hits in the first/last rows and the padded first/last columns
    events = sparse_events(6, seed=21)
    events["images"][..., 0] = 0.0  # event 5: no tracker hit at all
    for i, (r, c) in enumerate([(0, 0), (359, 285), (0, 2), (4, 3), (355, 283)]):
        events["images"][i, r, c, 0] = 1e-30
    formats.write_darkshowers(edges, [events], generator="test")
    for path, indices, block in ((mixed_file, np.arange(48), 64), (mixed_file, np.array([40, 3, 17, 5, 46]), 2),
                                 (edges, np.arange(6), 4)):
        tf_masks = np.concatenate([b.numpy() for b in pipeline.masks(path, np.sort(indices), read_block=block)
                                   .batch(64)]).astype(np.float32)
        np.testing.assert_array_equal(pipeline.load_masks(path, indices, read_block=block), tf_masks)
    bad = tmp_path / "bad.h5"
    events["images"][3, 7, 7, 2] = np.nan
    formats.write_darkshowers(bad, [events], generator="test")
    with pytest.raises(TfphysError, match="'images' event 3 has non-finite"):
        pipeline.load_masks(bad, np.arange(6))
