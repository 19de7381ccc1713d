"""tf.distribute training (two real workers on 127.0.0.1) and sharded scoring with its merge check."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from tfphys import config as configs
from tfphys import distribute, training
from tfphys.cli import train_main
from tfphys.errors import TfphysError

TINY_AE = """
[data]
classes = [0]
val_fraction = 0.25
[pipeline]
batch_size = 8
shuffle_buffer = 64
augmentation = true
[model]
encoder_filters = [[4, 4], [4, 0], [4, 0]]
latent_dim = 8
decoder_reshape = [9, 8, 4]
decoder_filters = [4, 4, 4]
[train]
epochs = 3
seed = 3
[train.optimizer]
class_name = "Adam"
learning_rate = 3e-3
"""

# One worker of the cluster: the strategy first (before any other TensorFlow op), then the one
# trainer; KILL_AT=k ends the process abruptly when epoch k begins (after epoch k-1 was backed up).
WORKER = textwrap.dedent("""
    import os, sys
    from tfphys import distribute
    strategy = distribute.make_strategy("multiworker")
    import keras, numpy as np
    from tfphys import config as configs, training

    cfg_path, data, out, dump = sys.argv[1:5]
    kill_at = int(os.environ.get("KILL_AT", "-1"))

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                os._exit(17)

        def on_train_end(self, logs=None):
            np.savez(dump, *self.model.get_weights())

    result = training.train("ae", configs.load(cfg_path), out, data=data, verbose=0,
                            strategy=strategy, callbacks=[Probe()])
    print("RESULT", result.resumed_from_epoch, [row["loss"] for row in result.history], flush=True)
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_cluster(tmp_path, cfg, data, out, kill_at=None, timeout=240):
    """Start two workers, wait for both; returns their CompletedProcess-like (code, stdout, stderr)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
                   TF_CONFIG=json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}))
        env.pop("KILL_AT", None)
        if kill_at is not None:
            env["KILL_AT"] = str(kill_at)
        procs.append(subprocess.Popen(
            [sys.executable, str(script), str(cfg), str(data), str(out), str(tmp_path / f"weights{i}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            results.append((p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def test_two_workers_train_identically_and_resume_after_a_kill(tmp_path, qcd_file):
    cfg = tmp_path / "tiny_ae.toml"
    cfg.write_text(TINY_AE.replace("epochs = 3", "epochs = 2"))
    out = tmp_path / "run"

    # Both workers die when epoch 1 begins: epoch 0 is finished and backed up.
    killed = _run_cluster(tmp_path, cfg, qcd_file, out, kill_at=1)
    assert [code for code, _, _ in killed] == [17, 17], [err[-3000:] for _, _, err in killed]
    assert (out / "backup").is_dir() and (out / ".worker-1" / "backup").is_dir()
    assert [row["epoch"] for row in training.read_history(out / "history.csv")] == [0]

    # Restarted with the same command: both resume at epoch 1 and finish with the same weights.
    done = _run_cluster(tmp_path, cfg, qcd_file, out)
    assert [code for code, _, _ in done] == [0, 0], [err[-3000:] for _, _, err in done]
    reports = [next(line for line in stdout.splitlines() if line.startswith("RESULT")) for _, stdout, _ in done]
    assert all(r.split()[1] == "1" for r in reports)  # resumed from epoch 1 on both workers
    w0, w1 = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])  # all-reduced updates: bit-identical

    history = training.read_history(out / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1]
    assert history[1]["loss"] < history[0]["loss"]  # it learns across the restart
    # [pipeline] batch_size is the global batch and DATA auto-sharding splits every batch between
    # the workers: one process with the same seed sees the same batches, so the same losses.
    # (Epoch 0 only: a resumed pipeline restarts its shuffle sequence, in one process as in two.)
    single = training.train("ae", configs.load(cfg), tmp_path / "single", data=qcd_file, verbose=0)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(history[0][key], single.history[0][key], rtol=1e-6)
    assert (out / "model.keras").exists() and (out / "history.png").exists()
    assert not (out / "backup").exists() and not (out / ".worker-1").exists()  # temporary state removed


# ------------------------------------------------------------------ strategies, config, refusals
def test_tf_config_is_validated_with_clear_messages():
    good = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    assert distribute.tf_config_cluster(json.dumps(good))["task"]["index"] == 1
    bad = [("{'cluster'", "not valid JSON"),
           (json.dumps({"cluster": {"worker": ["a:1"]}}), 'needs "cluster" and "task"'),
           (json.dumps({**good, "task": {"type": "worker", "index": 2}}), "index 2 is out of range"),
           (json.dumps({**good, "task": {"type": "ps", "index": 0}}), "task type 'ps'"),
           (json.dumps({"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}), "'a' is not"),
           (json.dumps({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}), "job 'ps'")]
    for text, message in bad:
        with pytest.raises(TfphysError, match=message):
            distribute.tf_config_cluster(text)
    with pytest.raises(TfphysError, match="unknown strategy 'tpu'"):
        distribute.make_strategy("tpu")


def test_multiworker_without_or_with_a_bad_cluster_is_one_error_line(tmp_path, qcd_file, monkeypatch, capsys):
    cfg = tmp_path / "tiny_ae.toml"
    cfg.write_text(TINY_AE)
    args = ["ae", "--config", str(cfg), "--data", str(qcd_file), "--out", str(tmp_path / "run"),
            "--strategy", "multiworker"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)
    assert train_main(args) == 1
    assert "needs a cluster: set TF_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    assert train_main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfphys-train: error: TF_CONFIG task index 3") and "\n" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory, qcd_file):
    """A tiny AE trained through the CLI under MirroredStrategy (one replica on this CPU)."""
    tmp = tmp_path_factory.mktemp("mirrored")
    cfg = tmp / "tiny_ae.toml"
    cfg.write_text(TINY_AE)
    out = tmp / "run"
    assert train_main(["ae", "--config", str(cfg), "--data", str(qcd_file), "--out", str(out),
                       "--epochs", "2", "--strategy", "mirrored"]) == 0
    return out


def test_mirrored_strategy_trains_through_the_cli(mirrored_run):
    history = training.read_history(mirrored_run / "history.csv")
    assert [row["epoch"] for row in history] == [0, 1] and history[1]["loss"] < history[0]["loss"]
    assert (mirrored_run / "model.keras").exists() and not (mirrored_run / "backup").exists()


def test_what_a_strategy_cannot_do_is_refused_before_training(tmp_path, qcd_file):
    import tensorflow as tf

    path = tmp_path / "ga.toml"
    path.write_text(TINY_AE + "gradient_accumulation_steps = 2\n")
    cfg = configs.load(path)
    with pytest.raises(TfphysError, match="gradient_accumulation_steps = 2 does not work under a tf.distribute"):
        training.train("ae", cfg, tmp_path / "ga", data=qcd_file, verbose=0, strategy=tf.distribute.MirroredStrategy())
    two_replicas = types.SimpleNamespace(num_replicas_in_sync=2)
    lattice = configs.load(configs.default_config_path("leapfrog"))
    with pytest.raises(TfphysError, match="leapfrog trains on one replica only"):
        training.train("leapfrog", lattice, tmp_path / "lf", verbose=0, strategy=two_replicas)


# ------------------------------------------------------------------------------ sharded scoring
def test_shards_tile_the_events_exactly_once():
    from tfphys.scoring import parse_shard, shard_range

    for n in (0, 1, 7, 10, 1001):
        for n_shards in (1, 2, 3, 8, 13):
            ranges = [shard_range(n, i, n_shards) for i in range(n_shards)]
            covered = np.concatenate([np.arange(a, b) for a, b in ranges])
            np.testing.assert_array_equal(covered, np.arange(n))  # in order, no gap, no overlap
            sizes = [b - a for a, b in ranges]
            assert max(sizes) - min(sizes) <= 1
    assert shard_range(10, 2, 4) == (5, 7) and parse_shard(" 3/8 ") == (3, 8)
    for bad in ("4/4", "1", "-1/2", "a/b", "0/0"):
        with pytest.raises(TfphysError, match="--shard"):
            parse_shard(bad)


def test_merge_check_names_missing_and_duplicated_ranges():
    from tfphys.scoring import check_coverage

    check_coverage(np.array([2, 0, 1]), 3)
    with pytest.raises(TfphysError, match=r"3 event\(s\) never scored: \[3, 5\), \[9, 10\)"):
        check_coverage(np.array([0, 1, 2, 5, 6, 7, 8]), 10)
    with pytest.raises(TfphysError, match=r"2 event\(s\) scored more than once: \[4, 6\)"):
        check_coverage(np.array([0, 1, 2, 3, 4, 5, 4, 5]), 6)
    with pytest.raises(TfphysError, match="outside 0 … 5"):
        check_coverage(np.array([0, 1, 2, 3, 4, 5, 6]), 6)


def _scores(path):
    import h5py

    with h5py.File(path, "r") as f:
        return f["index"][:], {k: f["scores"][k][:] for k in f["scores"]}, dict(f.attrs)


def test_sharded_scores_merge_to_the_unsharded_ones(mirrored_run, mixed_file, tmp_path, capsys):
    import h5py

    from tfphys.cli import score_main

    whole, shards = tmp_path / "whole", tmp_path / "shards"
    assert score_main(["shard", str(mirrored_run), "--data", str(mixed_file), "--out", str(whole)]) == 0
    for i in range(3):
        args = ["shard", str(mirrored_run), "--data", str(mixed_file), "--out", str(shards), "--shard", f"{i}/3"]
        assert score_main(args) == 0
    assert score_main(["merge", str(shards)]) == 0
    assert "merged 3 shard(s): 48 events, each scored once" in capsys.readouterr().out
    assert score_main(["merge", str(whole)]) == 0

    index, merged, attrs = _scores(shards / "scores.h5")
    _, reference, _ = _scores(whole / "scores.h5")
    np.testing.assert_array_equal(index, np.arange(48))
    assert set(merged) == set(reference) >= {"BCE", "SSE", "PixelSum"} and attrs["model_name"] == "ae"
    for name in reference:
        np.testing.assert_allclose(merged[name], reference[name], rtol=1e-5, atol=1e-6)
    with h5py.File(shards / "scores.h5", "r") as f, h5py.File(mixed_file, "r") as src:
        np.testing.assert_array_equal(f["label"][:], src["label"][:])  # columns follow the events

    # A lost shard or a shard given twice is an error naming the events.
    files = sorted(shards.glob("scores-*-of-00003.h5"))
    from tfphys.scoring import merge

    with pytest.raises(TfphysError, match=r"16 event\(s\) never scored: \[16, 32\)"):
        merge(shards, [files[0], files[2]])
    with pytest.raises(TfphysError, match=r"16 event\(s\) scored more than once: \[32, 48\)"):
        merge(shards, [*files, files[2]])
    files[1].unlink()
    assert score_main(["merge", str(shards)]) == 1
    assert "never scored: [16, 32)" in capsys.readouterr().err
    # Shards of another split of the same file do not mix.
    assert score_main(["shard", str(mirrored_run), "--data", str(mixed_file), "--out", str(shards),
                       "--shard", "1/2"]) == 0
    assert score_main(["merge", str(shards)]) == 1
    assert "shard files disagree on n_shards" in capsys.readouterr().err


def test_albus_detection_statistics_are_sharded_too(tmp_path, mixed_file):
    from tfphys import registry
    from tfphys.albus import storage
    from tfphys.albus.coherence import MapGeometry
    from tfphys.albus.evaluate import STATISTICS
    from tfphys.albus.pipeline import read_maps
    from tfphys.scoring import merge, score_shard

    small = MapGeometry(sample_rate_hz=1024.0, duration_s=120.0)  # 20 × 257 pixels
    data = tmp_path / "maps.h5"
    storage.build(data, n_background=3, n_per_level=1, levels=(40,), n_glitch=0, seed=5, workers=1,
                  psd="analytic", geometry=small, progress=False)
    run = tmp_path / "albus-run"
    run.mkdir()
    model = registry.build(registry.get("albus"), dict(
        input_shape=[*small.shape, 3], down_filters=[4, 4], up_filters=[4], convs_per_block=1))
    model.save(run / "model.keras")
    configs.save({"model_name": "albus", "data": {}, "model": {}}, run / "config.toml")

    for i in range(2):
        score_shard(run, data, tmp_path / "out", shard=(i, 2), progress=False)
    index, merged, attrs = _scores(merge(tmp_path / "out"))
    maps, _ = read_maps(data, np.arange(4))
    outputs = model.predict(maps, verbose=0)[..., 0]
    np.testing.assert_array_equal(index, np.arange(4))
    assert attrs["family"] == "albus" and set(merged) == set(STATISTICS)
    for name, fn in STATISTICS.items():
        np.testing.assert_allclose(merged[name], fn(outputs), rtol=1e-5)
    with pytest.raises(TfphysError, match="holds a albus model but .* is a darkshowers file"):
        score_shard(run, mixed_file, tmp_path / "wrong", progress=False)


def test_a_slurm_step_gives_the_cluster_when_tf_config_is_unset(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setenv("TFPHYS_PORT_BASE", "23456")
    for key, value in {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "3", "SLURM_STEP_NODELIST": "node[07-08]",
                       "SLURM_STEP_TASKS_PER_NODE": "2,1"}.items():
        monkeypatch.setenv(key, value)
    resolver = distribute.cluster_resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["node07:23456", "node07:23457", "node08:23456"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    monkeypatch.setenv("TFPHYS_PORT_BASE", "http")
    with pytest.raises(TfphysError, match="TFPHYS_PORT_BASE must be a port number"):
        distribute.cluster_resolver()
