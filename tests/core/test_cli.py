"""End to end through the command-line tools: train, resume, refuse to overwrite, bad input."""

import dataclasses
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from export.cli import export_main
from tests.conftest import TINY_CONFIG, sparse_events
from tfphys import config as configs
from tfphys import registry, training
from tfphys.cli import data_main, data_parser, eval_main, score_main, train_main
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
    # A fresh process: `import tfphys` is all it takes to load a run safely.
    code = ("import sys, keras, numpy as np, tfphys; "
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
    # the best model so far is kept in backup/; model.keras appears only when the run is finished
    assert (out / "backup" / "best.keras").exists() and not (out / "model.keras").exists()

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
    assert len(err) == 1 and err[0].startswith("tfphys-train: error: [model] no_such_width: unknown key (keys of "
                                               "[model]: encoder_filters, ")
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
    assert "[model] latent_dims: unknown key; did you mean latent_dim?" in capsys.readouterr().err


def test_without_data_a_default_dataset_is_generated_once_and_cached(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("TFPHYS_CACHE", str(tmp_path / "cache"))
    args = ["codae", "--config", str(tiny_config), "--epochs", "1"]
    assert train_main([*args, "--out", str(tmp_path / "a")]) == 0
    (cached,) = (tmp_path / "cache").glob("darkshowers-qcd-n40-seed7-*.h5")
    stamp = cached.stat().st_mtime_ns
    assert train_main([*args, "--out", str(tmp_path / "b")]) == 0
    assert cached.stat().st_mtime_ns == stamp
    assert configs.load(tmp_path / "b" / "config.toml")["data"]["path"] == str(cached.resolve())


def test_data_darkshowers_writes_a_labelled_test_set(tmp_path, capsys):
    out = tmp_path / "all.h5"
    assert data_main(["darkshowers", "--process", "all", "--n", "2", "--out", str(out), "--seed", "5"]) == 0
    with formats.open_darkshowers(out) as f:
        labels, masses = f["label"][:], f["mass"][:]
    assert len(labels) == 2 * 10  # QCD + 6 SUEP + 3 SVJ mass points, 2 events each
    assert sorted(set(zip(labels.tolist(), masses.tolist()))) == [
        (0, 0.0), (1, 125.0), (1, 200.0), (1, 300.0), (1, 400.0), (1, 700.0), (1, 1000.0),
        (2, 2100.0), (2, 3100.0), (2, 4100.0)]
    assert data_main(["info", str(out)]) == 0
    assert "suep      1000        2" in capsys.readouterr().out


def test_data_darkshowers_is_reproducible_from_its_seed(tmp_path):
    paths = [tmp_path / f"{i}.h5" for i in range(3)]
    for path, seed in zip(paths, (1, 1, 2)):
        assert data_main(["darkshowers", "--process", "suep", "--mass", "400", "--n", "3",
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
    (["--process", "qcd", "--n", "2", "--workers", "2"], "workers: only for --generator pythia"),
    (["--process", "qcd", "--n", "2", "--workers", "0"], "--workers must be a positive number, got 0"),
])
def test_data_darkshowers_bad_requests(tmp_path, capsys, args, message):
    assert data_main(["darkshowers", *args, "--out", str(tmp_path / "x.h5")]) == 1
    assert message in capsys.readouterr().err


def test_data_subcommands_and_the_generate_alias(tmp_path, capsys):
    choices = next(a for a in data_parser()._actions if a.dest == "command").choices
    assert {"info", "darkshowers", "generate", "import", "cbae", "albus"} <= set(choices)
    assert choices["generate"] is choices["darkshowers"]  # the old name still works
    out = tmp_path / "qcd.h5"
    assert data_main(["generate", "--process", "qcd", "--n", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 2 events to {out}"


# ------------------------------------------------------------------ one vocabulary, one way to open a run
BIN = Path(sys.executable).parent
TINY_MODEL = dict(encoder_filters=[8] * 4, mask_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, qcd_file):
    """An untrained tiny CoDAE saved as a run dir (model.keras + the config a run has)."""
    keras.utils.set_random_seed(0)
    run = tmp_path_factory.mktemp("cli") / "codae-run"
    run.mkdir()
    cfg = configs.override(tomllib.loads(TINY_CONFIG), "data", "path", str(qcd_file))
    cfg["model_name"] = "codae"
    registry.build(registry.get("codae"), cfg["model"]).save(run / "model.keras")
    configs.save(cfg, run / "config.toml")
    return run


def _corrupt_copy(run, dest):
    """``run``'s config with a truncated model.keras (the first half of the real one)."""
    dest.mkdir()
    (dest / "config.toml").write_bytes((run / "config.toml").read_bytes())
    model = (run / "model.keras").read_bytes()
    (dest / "model.keras").write_bytes(model[: len(model) // 2])
    return dest, len(model) // 2


def test_score_shard_then_merge(tiny_run, qcd_file, tmp_path, capsys):
    out = tmp_path / "scores"
    for i in range(2):
        assert score_main(["shard", str(tiny_run), "--data", str(qcd_file), "--out", str(out), "--shard", f"{i}/2",
                           "--seed", "3"]) == 0
    shard_lines = capsys.readouterr().out.strip().splitlines()
    assert shard_lines == [f"shard 0/2: {out / 'scores-00000-of-00002.h5'}",
                           f"shard 1/2: {out / 'scores-00001-of-00002.h5'}"]
    assert score_main(["merge", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("merged 2 shard(s): 48 events, each scored once; scores: ")
    assert lines[1] == f"scores: {out / 'scores.h5'}"
    with h5py.File(out / "scores.h5", "r") as f:
        np.testing.assert_array_equal(f["index"][:], np.arange(48))
        assert {"BCE", "SSE", "PixelSum"} <= set(f["scores"]) and f.attrs["model_name"] == "codae"


@pytest.mark.parametrize("args, message", [
    (["merge", "DIR", "--data", "x.h5"], "tfphys-score: error: unrecognized arguments: --data x.h5"),
    (["shard", "RUN", "--data", "x.h5", "--out", "DIR", "--merge", "DIR"],
     "tfphys-score: error: --merge DIR is now a subcommand: tfphys-score merge DIR "
     "(and scoring: tfphys-score shard RUN --data FILE --out DIR)"),
    (["--merge", "DIR"], "tfphys-score: error: --merge DIR is now a subcommand: tfphys-score merge DIR"),
    (["RUN", "--data", "x.h5", "--out", "DIR"], "tfphys-score: error: argument SUBCOMMAND: invalid choice: 'RUN'"),
    (["shard", "RUN", "--out", "DIR"], "tfphys-score shard: error: the following arguments are required: --data"),
])
def test_score_usage_errors_when_scoring_and_merging_are_mixed(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        score_main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(message)


def test_threads_must_be_positive(tiny_run, qcd_file, tmp_path, capsys):
    assert score_main(["shard", str(tiny_run), "--data", str(qcd_file), "--out", str(tmp_path),
                       "--threads", "0"]) == 1
    assert capsys.readouterr().err.strip() == "tfphys-score: error: --threads must be a positive number, got 0"
    assert not list(tmp_path.iterdir())


def test_export_times_iterations(tiny_run, labelled_file, tmp_path, capsys):
    out = tmp_path / "export"
    assert export_main([str(tiny_run), "--float32", "--iterations", "3", "--warmup", "1", "--samples", "4",
                        "--data", str(labelled_file), "--no-submodels", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["iterations"] == 3 and report["warmup"] == 1 and "runs" not in report
    assert "; 3 timed invocations after 1 warm-up invocations." in (out / "report.md").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        export_main([str(tiny_run), "--runs", "3"])
    assert exit_info.value.code == 2
    assert "tfphys-export: error: unrecognized arguments: --runs 3" in capsys.readouterr().err


@pytest.fixture
def fake_evaluation(monkeypatch):
    """codae's evaluator replaced by one that records what it was given."""
    seen = {}

    def evaluate(run, cfg, out, data, seed, others=()):
        seen.update(run=run, cfg=cfg, out=out, data=data, seed=seed, others=others)
        return Path(out) / "tables.md"

    real = registry.get
    monkeypatch.setattr(registry, "get", lambda name: dataclasses.replace(real(name), evaluate=evaluate)
                        if name == "codae" else real(name))
    return seen


def test_eval_set_overrides_the_saved_config_for_this_evaluation_only(tiny_run, fake_evaluation, capsys):
    before = (tiny_run / "config.toml").read_text()
    assert eval_main([str(tiny_run), "--set", "data.default_seed=9", "--set", "train.optimizer.learning_rate=1",
                      "--set", "model.encoder_filters=[4, 4, 4, 4]", "--set", "pipeline.shuffle_buffer=3",
                      "--seed", "5"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tiny_run / 'eval' / 'tables.md'}"
    cfg = fake_evaluation["cfg"]
    assert cfg["data"]["default_seed"] == 9 and cfg["data"]["path"] == configs.load(tiny_run / "config.toml")[
        "data"]["path"]
    assert cfg["train"]["optimizer"] == {"class_name": "AdamW", "learning_rate": 1.0, "weight_decay": 0.1,
                                         "clipnorm": 1.0}  # an integer for a number: 1.0
    assert cfg["model"]["encoder_filters"] == [4, 4, 4, 4]
    assert cfg["pipeline"]["shuffle_buffer"] == 3  # not in the run's config: a key of models/codae.toml
    assert fake_evaluation["seed"] == 5
    assert (tiny_run / "config.toml").read_text() == before  # the run is left as it was


@pytest.mark.parametrize("setting, message", [
    ("data.no_such_key=1", "--set data.no_such_key: [data] no_such_key: unknown key (keys of [data]: path, classes, "
                           "val_fraction, max_events, default_process, default_n, default_seed, signal_fraction)"),
    ("data.default_sed=1", "--set data.default_sed: [data] default_sed: unknown key; did you mean default_seed?"),
    ("nosection.key=1", "--set nosection.key: [nosection]: unknown section (sections of codae: data, pipeline, "
                        "model, train)"),
    ("trajectories=5", "--set 'trajectories=5': expected SECTION.KEY=VALUE, e.g. eval.trajectories=5000"),
    ("data.default_seed", "--set 'data.default_seed': expected SECTION.KEY=VALUE, e.g. eval.trajectories=5000"),
    ("data.default_seed=abc", "--set data.default_seed=abc: not a TOML value (numbers 5000 or 1e-3, "
                              "true/false, lists [2, 3], strings in quotes \"text\")"),
    ("data.default_seed=1\nx = 2", "--set data.default_seed=1\\nx = 2: not a TOML value"),
    ('data.default_seed="7"', '--set data.default_seed: [data] default_seed: expected an integer, got "7"'),
    ("data.val_fraction=[0.5]", "--set data.val_fraction: [data] val_fraction: expected a number, got [0.5]"),
    ("train.optimizer=3", "--set train.optimizer: [train.optimizer] is a table; set its keys one by one"),
    ("train.optimizer.learning_rat=1", "--set train.optimizer.learning_rat: the run's config has no key "
     "train.optimizer.learning_rat (keys of [train.optimizer]: class_name, learning_rate, weight_decay, clipnorm)"),
    ('train.optimizer.learning_rate="x"', "--set train.optimizer.learning_rate='x': expected a number like 0.003, "
                                          "got a string"),
])
def test_eval_set_refuses_a_bad_key_or_value_in_one_line(tiny_run, fake_evaluation, capsys, setting, message):
    assert eval_main([str(tiny_run), "--set", setting]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tfphys-eval: error: {message}"), err
    assert not fake_evaluation


LEAPFROG = """
model_name = "leapfrog"
[data]
[pipeline]
steps_per_epoch = 3
val_steps = 2
[model]
lattice_size = 3
n_leapfrog = 1
n_chains = 4
beta = 2.0
beta_init = 1.0
anneal_steps = 6
units = [4]
[train]
epochs = 1
seed = 0
[eval]
thermalise = 5
trajectories = 20
betas = [2.0, 3.0]
scan_trajectories = 4
scan_thermalise = 2
lengths = [1]
"""


def test_eval_set_gives_the_leapfrog_evaluation_other_sizes(tmp_path, capsys):
    """``tfphys-eval RUN --set eval.…``: what the removed ``python -m tfphys.leapfrog.evaluate`` entry point did."""
    run = tmp_path / "leapfrog"
    run.mkdir()
    (run / "config.toml").write_text(LEAPFROG)
    cfg = configs.load(run / "config.toml")
    registry.build(registry.get("leapfrog"), cfg["model"]).save(run / "model.keras")
    assert eval_main([str(run), "--set", "eval.trajectories=12", "--set", "eval.betas=[2]",
                      "--out", str(tmp_path / "eval")]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'eval' / 'report.md'}"
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "5 thermalisation + 12 measured trajectories each, seed 0." in report
    assert configs.load(run / "config.toml")["eval"]["trajectories"] == 20


def test_a_corrupt_model_is_one_line_under_eval_score_and_export(tiny_run, labelled_file, qcd_file, tmp_path):
    """As a user runs them: each command in a fresh process, stderr one ``PROG: error:`` line."""
    run, size = _corrupt_copy(tiny_run, tmp_path / "corrupt")
    commands = {
        "tfphys-eval": [run, "--data", labelled_file, "--out", tmp_path / "eval"],
        "tfphys-score": ["shard", run, "--data", qcd_file, "--out", tmp_path / "scores"],
        "tfphys-export": [run, "--float16", "--iterations", "3", "--out", tmp_path / "export"],
    }
    procs = {name: subprocess.Popen([str(BIN / name), *map(str, args)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, args in commands.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, err[-2000:]
        assert err.strip().splitlines() == [
            f"{name}: error: could not load a Keras model from {run / 'model.keras'}: it is not a .keras zip "
            f"archive ({size} bytes; truncated or corrupt?)"], err[-2000:]
    assert not any((tmp_path / d).exists() for d in ("eval", "scores", "export"))
