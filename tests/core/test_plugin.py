"""A fifth paper as a package of its own: ``tinyfam``, written to a temp dir outside tfphys, found
through its ``tfphys.families`` entry point alone, trained, evaluated and exported by the normal
commands in fresh processes.

The package has what a real plug-in has: a custom Keras layer (so loading a run needs the family
loaded), a default dataset cached through :mod:`tfphys.cache`, a ``tfphys-data`` subcommand, a
file kind for ``tfphys-data info``, an evaluator and what ``tfphys-export`` needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfphys import registry

BIN = Path(sys.executable).parent

TINYFAM = '''
"""tinyfam — a one-paper family outside tfphys: a 1-d autoencoder of noisy sine waves."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from tfphys.cache import cached
from tfphys.errors import TfphysError
from tfphys.registry import DataCommand, Family, FileKind, ModelSpec

WIDTH = 8


@keras.saving.register_keras_serializable(package="tinyfam")
class Gain(keras.layers.Layer):
    """y = g · x with one trainable gain: a custom layer, so loading a run needs this family."""

    def build(self, input_shape):
        self.gain = self.add_weight(shape=(), initializer="ones", name="gain")

    def call(self, x):
        return self.gain * x


def build_tiny(latent=1, hidden=4):
    x = keras.Input((WIDTH,), name="x")
    h = keras.layers.Dense(hidden, activation="tanh")(x)
    h = keras.layers.Dense(hidden, activation="tanh")(keras.layers.Dense(latent, name="z")(h))
    return keras.Model(x, Gain(name="gain")(keras.layers.Dense(WIDTH)(h)), name="tiny")


def write(path, n, seed):
    """n background events (label 0: a·sin, one latent number) then n signal events (label 1: a·cos)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, WIDTH)
    amp = rng.uniform(0.5, 1.5, (2 * n, 1))
    shape = np.concatenate([np.tile(np.sin(2 * np.pi * t), (n, 1)), np.tile(np.cos(2 * np.pi * t), (n, 1))])
    x = amp * shape + 0.05 * rng.standard_normal((2 * n, WIDTH))
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "tinyfam"
        f["x"] = x.astype(np.float32)
        f["label"] = np.repeat(np.array([0, 1], np.int8), n)
    return path


def is_tiny(path):
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("kind") == "tinyfam"
    except OSError:
        return False


def read(path):
    if not is_tiny(path):
        raise TfphysError(f"{path} is not a tinyfam file")
    with h5py.File(path, "r") as f:
        return f["x"][:], f["label"][:]


def summary(path):
    x, label = read(path)
    return f"tinyfam file {path}: {int((label == 0).sum())} background, {int((label == 1).sum())} signal events"


def _path(cfg):
    return Path(cfg["data"]["path"]) if cfg["data"].get("path") else _default_data(cfg)


def _default_data(cfg):
    n, seed = int(cfg["data"].get("default_n", 64)), int(cfg["data"].get("default_seed", 0))
    return cached(f"tinyfam-n{n}-seed{seed}.h5", lambda tmp: write(tmp, n, seed))


def _datasets(cfg, path, seed):
    x, label = read(path)
    x = x[label == 0]
    n_val = max(1, round(float(cfg["data"].get("val_fraction", 0.25)) * len(x)))
    batch = int(cfg["pipeline"].get("batch_size", 8))
    train, val = x[:-n_val], x[-n_val:]
    return (tf.data.Dataset.from_tensor_slices((train, train)).shuffle(len(train), seed=seed).batch(batch),
            tf.data.Dataset.from_tensor_slices((val, val)).batch(batch))


def _representative(cfg, n, seed):
    x, label = read(_path(cfg))
    return x[label == 0][:n]


def _labelled_sample(cfg, path, n_per_class, seed):
    x, label = read(path or _path(cfg))
    keep = np.concatenate([np.flatnonzero(label == 0)[:n_per_class], np.flatnonzero(label == 1)[:n_per_class]])
    return x[keep], label[keep]


def mse(inputs, outputs):
    return np.mean(np.square(np.asarray(inputs) - np.asarray(outputs)), axis=1)


def _evaluate(run_dir, cfg, out_dir, data, seed):
    from sklearn.metrics import roc_auc_score

    from tfphys.registry import load_model

    model = load_model(Path(run_dir) / "model.keras")
    x, label = read(data or _path(cfg))
    score = mse(x, model.predict(x, verbose=0))
    numbers = {"n_background": int((label == 0).sum()), "n_signal": int((label == 1).sum()),
               "mse_background": float(score[label == 0].mean()), "auroc": float(roc_auc_score(label, score))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(numbers))
    report = out / "report.md"
    report.write_text(f"# tiny: {run_dir}\\n\\nAUROC (MSE) {numbers['auroc']:.4f} on "
                      f"{numbers['n_background']} + {numbers['n_signal']} events\\n")
    return report


def _add_arguments(p):
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--seed", type=int, default=1)


def _generate(args):
    write(args.out, args.n, args.seed)
    return f"wrote {args.out}: {2 * args.n} tinyfam events"


SPEC = ModelSpec(
    name="tiny", family="tinyfam", build=build_tiny, datasets=_datasets, default_data=_default_data,
    loss=lambda: "mse", metrics=lambda: ["mae"], description="a 1-d autoencoder of sine waves (plug-in test)",
    representative=_representative, labelled_sample=_labelled_sample, anomaly_score=mse, evaluate=_evaluate,
)

FAMILY = Family(
    name="tinyfam", description="a fifth paper, installed as a package of its own", specs=(SPEC,),
    data_commands=(DataCommand("tiny", "write a labelled tinyfam file", _add_arguments, _generate),),
    file_kinds=(FileKind("tinyfam", is_tiny, summary),),
)
'''

CONFIG = """
[data]
val_fraction = 0.25
default_n = 48
default_seed = 3
[pipeline]
batch_size = 8
[model]
latent = 1
hidden = 4
[train]
epochs = 3
seed = 0
[train.optimizer]
class_name = "Adam"
learning_rate = 0.02
"""


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The package on disk (tinyfam/ + tinyfam-0.1.dist-info/), the environment that finds it, a
    labelled file written by its ``tfphys-data tiny`` and a run trained by ``tfphys-train tiny``."""
    root = tmp_path_factory.mktemp("plugin")
    site = root / "site"
    (site / "tinyfam").mkdir(parents=True)
    (site / "tinyfam" / "__init__.py").write_text(TINYFAM)
    info = site / "tinyfam-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyfam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tfphys.families]\ntinyfam = tinyfam:FAMILY\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "TFPHYS_CACHE": str(root / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}

    labelled = root / "labelled.h5"
    data = _run("tfphys-data", env, "tiny", "--out", labelled, "--n", 20, "--seed", 9)
    config, run = root / "tiny.toml", root / "run"
    config.write_text(CONFIG)
    train = _run("tfphys-train", env, "tiny", "--config", config, "--out", run)
    return SimpleNamespace(root=root, site=site, env=env, labelled=labelled, run=run, data_out=data.stdout,
                           train_out=train.stdout)


def _run(command, env, *args, ok=True):
    done = subprocess.run([str(BIN / command), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)
    if ok:
        assert done.returncode == 0, f"{command} {args} failed:\n{done.stdout}\n{done.stderr}"
    return done


#: few timed invocations: the test checks the export, not its latency
EXPORT_FLAGS = ["--iterations", 3, "--warmup", 1]


def test_the_plugin_model_is_known_to_the_commands(plugin):
    builtin = registry.names()
    assert "tiny" not in builtin  # this process never saw the plug-in
    done = _run("tfphys-train", plugin.env, "no-such-model", ok=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"tfphys-train: error: unknown model 'no-such-model'; known models: {', '.join(sorted([*builtin, 'tiny']))}")


def test_its_data_command_and_its_training_on_the_cached_default_data(plugin):
    assert plugin.data_out.strip() == f"wrote {plugin.labelled}: 40 tinyfam events"
    run = plugin.run
    assert f"model: {run / 'model.keras'}" in plugin.train_out
    cached = plugin.root / "cache" / "tinyfam-n48-seed3.h5"  # generated through tfphys.cache
    with h5py.File(cached, "r") as f:
        assert f["x"].shape == (96, 8) and f.attrs["kind"] == "tinyfam"
    saved = (run / "config.toml").read_text()
    assert 'model_name = "tiny"' in saved and str(cached.resolve()) in saved
    history = (run / "history.csv").read_text().strip().splitlines()
    assert len(history) == 1 + 3 and history[0].startswith("epoch")
    assert (run / "model.keras").stat().st_size > 1000


def test_eval_runs_the_family_evaluator_and_export_validates_the_tflite(plugin):
    run, labelled, env = plugin.run, plugin.labelled, plugin.env
    done = _run("tfphys-eval", env, run, "--data", labelled)
    assert done.stdout.strip().splitlines()[-1] == f"report: {run / 'eval' / 'report.md'}"
    numbers = json.loads((run / "eval" / "metrics.json").read_text())
    assert numbers["n_background"] == numbers["n_signal"] == 20
    assert (run / "eval" / "report.md").read_text().startswith(
        f"# tiny: {run}\n\nAUROC (MSE) {numbers['auroc']:.4f} on 20 + 20 events")

    done = _run("tfphys-export", env, run, "--float32", "--samples", 12, "--data", labelled,
                "--out", run / "export", *EXPORT_FLAGS)
    report = json.loads((run / "export" / "report.json").read_text())
    assert report["model"] == "tiny" and report["precision"] == "float32"
    assert report["source"] == str(run / "model.keras")
    assert report["n_validation"] == 24 and report["n_auroc"] == 24 and report["anomaly_score"] == "mse"
    assert report["max_abs_diff"] <= report["tolerance"][0]
    assert report["auroc_float32"] == pytest.approx(report["auroc_keras"], abs=1e-6)
    assert (run / "export" / "model_float32.tflite").stat().st_size > 500
    assert not [op for op in report["ops"] if op.startswith("Flex") or op == "CUSTOM"]
    assert f"report: {run / 'export' / 'report.md'}" in done.stdout

    # the numbers are the model's: recompute them here with the plug-in imported
    sys.path.insert(0, str(plugin.site))
    try:
        import keras
        import tinyfam

        model = keras.saving.load_model(run / "model.keras", safe_mode=True)
        x, label = tinyfam.read(labelled)
        score = tinyfam.mse(x, model.predict(x, verbose=0))
        assert numbers["auroc"] == pytest.approx(roc_auc_score(label, score), abs=1e-6)
        assert numbers["mse_background"] == pytest.approx(score[label == 0].mean(), rel=1e-4)
        first = np.r_[0:12, 20:32]  # the export's sample: 12 events of each class
        assert report["auroc_keras"] == pytest.approx(roc_auc_score(label[first], score[first]), abs=1e-6)
    finally:
        sys.path.remove(str(plugin.site))
        sys.modules.pop("tinyfam", None)


def test_keras_loads_a_plugin_run_after_import_tfphys_and_data_info_knows_its_files(plugin):
    done = _run("tfphys-data", plugin.env, "info", plugin.labelled)
    assert done.stdout.strip() == f"tinyfam file {plugin.labelled}: 20 background, 20 signal events"
    # keras alone does not know the plug-in's Gain layer; after import tfphys it does
    code = textwrap.dedent("""
        import sys, keras
        try:
            keras.saving.load_model(sys.argv[1], safe_mode=True)
        except Exception as err:
            print("without tfphys:", type(err).__name__)
        import tfphys
        model = keras.saving.load_model(sys.argv[1], safe_mode=True)
        print("with tfphys:", type(model.get_layer("gain")).__module__, model.name)
    """)
    done = subprocess.run([sys.executable, "-c", code, str(plugin.run / "model.keras")], env=plugin.env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["without tfphys: TypeError", "with tfphys: tinyfam tiny"]
