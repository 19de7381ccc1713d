"""End to end through the command-line tools: train, resume, refuse to overwrite, bad input."""

import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from tests.conftest import sparse_events

from tfphys import config as configs
from tfphys import training
from tfphys.cli import data_main, train_main
from tfphys.darkshowers import format as formats


def _train_args(cfg, data, out, *extra):
    return ["codae", "--config", str(cfg), "--data", str(data), "--out", str(out), *extra]


def test_tiny_codae_run_writes_a_complete_run_dir(tmp_path, tiny_config, qcd_file, capsys):
    out = tmp_path / "run"
    assert train_main(_train_args(tiny_config, qcd_file, out, "--epochs", "3")) == 0
    assert f"model: {out / 'model.keras'}" in capsys.readouterr().out
    history = training.read_history(out / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1, 2]
    assert (out / "history.png").stat().st_size > 0
    assert history[-1]["loss"] < history[0]["loss"]  # it learns
    assert all(np.isfinite(row["val_ssim"]) for row in history)
    saved = configs.load(out / "config.toml")
    assert saved["train"]["epochs"] == 3 and saved["data"]["path"] == str(qcd_file.resolve())
    # A fresh process: `import tfphys.models` is all it takes to load a run safely.
    code = ("import sys, keras, numpy as np, tfphys.models; "
            "m = keras.saving.load_model(sys.argv[1], safe_mode=True); "
            "print(m.predict(np.zeros((2, 72, 58, 1), 'float32'), verbose=0).shape)")
    done = subprocess.run([sys.executable, "-c", code, str(out / "model.keras")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("(2, 72, 58, 1)")


class _InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _CountEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.started = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started.append(epoch)


def test_a_rerun_after_a_kill_resumes_without_losing_a_finished_epoch(tmp_path, tiny_config, qcd_file):
    out = tmp_path / "run"
    cfg = configs.override(configs.load(tiny_config), "train", "epochs", 3)
    with pytest.raises(KeyboardInterrupt):
        training.train("codae", cfg, out, data=qcd_file, verbose=0, callbacks=[_InterruptAfter(1)])
    assert [r["epoch"] for r in training.read_history(out / "history.csv")] == [0, 1]
    assert (out / "backup").is_dir() and (out / "model.keras").exists()

    counter = _CountEpochs()
    cfg = configs.override(configs.load(tiny_config), "train", "epochs", 3)
    result = training.train("codae", cfg, out, data=qcd_file, verbose=0, callbacks=[counter])
    assert counter.started == [2]  # only the unfinished epoch runs again
    assert result.resumed_from_epoch == 2
    assert [r["epoch"] for r in result.history] == [0, 1, 2]
    assert not (out / "backup").exists()  # finished: the backup is cleaned up


def test_finished_runs_are_never_overwritten(tmp_path, tiny_config, qcd_file, capsys):
    out = tmp_path / "run"
    assert train_main(_train_args(tiny_config, qcd_file, out, "--epochs", "1")) == 0
    before = (out / "model.keras").read_bytes()
    assert train_main(_train_args(tiny_config, qcd_file, out, "--epochs", "1")) == 1
    assert "already holds a finished run" in capsys.readouterr().err
    assert train_main(_train_args(tiny_config, qcd_file, out, "--resume")) == 1
    assert (out / "model.keras").read_bytes() == before


def _bad_file(tmp_path, kind):
    path = tmp_path / f"{kind}.h5"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "shape":
        with h5py.File(path, "w") as f:
            f["images"] = np.zeros((4, 72, 58, 1), np.float32)
            f["label"] = np.zeros(4, np.int8)
            f["mass"] = np.zeros(4, np.float32)
            f["n_tracks"] = np.zeros(4, np.int32)
    elif kind == "nan":
        events = sparse_events(16, seed=4)
        events["images"][13, 100, 100, 0] = np.nan
        formats.write_darkshowers(path, [events], generator="test")
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "does not exist"),
    ("empty", "is empty"),
    ("shape", "per-event shape (72, 58, 1), expected (360, 286, 3)"),
    ("nan", "event 13 has non-finite"),
])
def test_bad_data_gives_one_clear_line_and_nonzero_exit(tmp_path, tiny_config, capsys, kind, message):
    rc = train_main(_train_args(tiny_config, _bad_file(tmp_path, kind), tmp_path / "run"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and err[0].startswith("tfphys-train: error:") and message in err[0]
    if kind != "nan":  # refused when opened, so no run dir is left behind (a NaN is met in training)
        assert not (tmp_path / "run").exists()


def test_a_refused_model_table_gives_one_line_and_leaves_no_run_dir(tmp_path, tiny_config, qcd_file, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(Path(tiny_config).read_text().replace("[model]", "[model]\nno_such_width = 3", 1))
    assert train_main(_train_args(bad, qcd_file, tmp_path / "run")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key(s) no_such_width" in err[0]
    assert not (tmp_path / "run").exists()


def test_unknown_model_and_unknown_option(capsys):
    assert train_main(["nosuchmodel"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'nosuchmodel'; known models: " in err
    from tfphys import registry

    assert err.strip().endswith(", ".join(registry.names()))
    with pytest.raises(SystemExit) as exit_info:
        train_main(["codae", "--learning-rat", "3"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --learning-rat" in capsys.readouterr().err


def test_unknown_model_key_in_config_is_refused(tmp_path, tiny_config, qcd_file, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(tiny_config.read_text().replace("[model]", "[model]\nlatent_dims = 3"))
    assert train_main(_train_args(cfg, qcd_file, tmp_path / "run")) == 1
    assert "unknown key(s) latent_dims" in capsys.readouterr().err


def test_without_data_a_default_dataset_is_generated_once_and_cached(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("TFPHYS_CACHE", str(tmp_path / "cache"))
    args = ["codae", "--config", str(tiny_config), "--epochs", "1"]
    assert train_main([*args, "--out", str(tmp_path / "a")]) == 0
    (cached,) = (tmp_path / "cache").glob("darkshowers-qcd-n40-seed7-*.h5")
    stamp = cached.stat().st_mtime_ns
    assert train_main([*args, "--out", str(tmp_path / "b")]) == 0
    assert cached.stat().st_mtime_ns == stamp
    assert configs.load(tmp_path / "b" / "config.toml")["data"]["path"] == str(cached.resolve())


def test_data_generate_writes_a_labelled_test_set(tmp_path, capsys):
    out = tmp_path / "all.h5"
    assert data_main(["generate", "--process", "all", "--n", "2", "--out", str(out), "--seed", "5"]) == 0
    with formats.open_darkshowers(out) as f:
        labels, masses = f["label"][:], f["mass"][:]
    assert len(labels) == 2 * 10  # QCD + 6 SUEP + 3 SVJ mass points, 2 events each
    assert sorted(set(zip(labels.tolist(), masses.tolist()))) == [
        (0, 0.0), (1, 125.0), (1, 200.0), (1, 300.0), (1, 400.0), (1, 700.0), (1, 1000.0),
        (2, 2100.0), (2, 3100.0), (2, 4100.0)]
    assert data_main(["info", str(out)]) == 0
    assert "suep      1000        2" in capsys.readouterr().out


def test_data_generate_is_reproducible_from_its_seed(tmp_path):
    paths = [tmp_path / f"{i}.h5" for i in range(3)]
    for path, seed in zip(paths, (1, 1, 2)):
        assert data_main(["generate", "--process", "suep", "--mass", "400", "--n", "3",
                          "--out", str(path), "--seed", str(seed)]) == 0
    images = []
    for path in paths:
        with formats.open_darkshowers(path) as f:
            images.append(f["images"][:])
    np.testing.assert_array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])


@pytest.mark.parametrize("args, message", [
    (["--process", "suep", "--mass", "150", "--n", "2"], "150 GeV is not a suep mass point"),
    (["--process", "qcd", "--n", "0"], "--n must be a positive"),
    (["--process", "all", "--mass", "125", "--n", "2"], "cannot be combined"),
    (["--process", "qcd", "--n", "2", "--generator", "herwig"], "unknown generator 'herwig'"),
])
def test_data_generate_bad_requests(tmp_path, capsys, args, message):
    assert data_main(["generate", *args, "--out", str(tmp_path / "x.h5")]) == 1
    assert message in capsys.readouterr().err
