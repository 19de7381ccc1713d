"""Every registered model through every command that takes a run, each in a fresh process.

One session fixture trains a tiny version of every model in ``tfphys.registry.names()`` with
``tfphys-train`` (two processes at a time); then fresh processes load every run with plain
``keras.saving.load_model`` after ``import tfphys``, export each exportable run, evaluate each
family's runs and score each run of a model with a scorer in a shard and merge it. Default data
(the CBAE's) are generated once into a session ``$TFPHYS_CACHE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import TINY_MODELS, sparse_events
from tfphys import config as configs
from tfphys import registry
from tfphys.albus import storage
from tfphys.albus.coherence import MapGeometry
from tfphys.darkshowers import format as formats

BIN = Path(sys.executable).parent
NAMES = registry.names()
#: subprocesses at a time (CI has 2 cores)
WORKERS = 2

TINY_MODEL = TINY_MODELS
ALBUS_GEOMETRY = MapGeometry(sample_rate_hz=1024.0, duration_s=120.0)  # 20 × 257 pixels
#: the [eval] table of tests/leapfrog/test_sampler.py
LEAPFROG_EVAL = dict(thermalise=5, trajectories=20, betas=[2.0], scan_trajectories=10, scan_thermalise=2, lengths=[1])


def _config(name: str, family: str) -> dict:
    """models/NAME.toml with the tiny [model] and short runs."""
    cfg = configs.load(configs.default_config_path(name))
    cfg["model"] = dict(TINY_MODEL[name])
    cfg["train"].update(epochs=1, seed=1)
    if family == "darkshowers":
        cfg["data"]["val_fraction"] = 0.25
        if name == "dirvae":  # contaminated with signal, as in tests/darkshowers/test_baselines.py
            cfg["data"]["signal_fraction"] = 0.1
        cfg["pipeline"].update(batch_size=8, shuffle_buffer=64)
    elif family == "albus":
        cfg["model"]["input_shape"] = [*ALBUS_GEOMETRY.shape, 3]
        cfg["pipeline"]["batch_size"] = 4
        cfg["data"]["val_fraction"] = 0.2
    elif family == "cbae":
        cfg["data"].update(val_fraction=0.25, default_n=160, default_seed=5)
        cfg["pipeline"]["batch_size"] = 32
    elif family == "leapfrog":
        cfg["pipeline"].update(steps_per_epoch=3, val_steps=2)
        cfg["eval"] = dict(LEAPFROG_EVAL)
    return cfg


def _run(command: str, *args, env, ok=True) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    done = subprocess.run([str(BIN / command), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=900)
    done.seconds = time.perf_counter() - start
    print(f"{done.seconds:6.1f} s  {command} {' '.join(map(str, args))}", file=sys.stderr)
    if ok:
        assert done.returncode == 0, f"{command} {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _parallel(jobs: dict) -> dict:
    """``{key: (command, *args)}`` run as subprocesses, ``WORKERS`` at a time → ``{key: CompletedProcess}``."""
    env = jobs.pop("env")
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {key: pool.submit(_run, *job, env=env, ok=False) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{' '.join(done.args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Every registered model trained by ``tfphys-train`` in its own process: {name: run dir}, plus
    the data files and the environment (a session ``$TFPHYS_CACHE``)."""
    root = tmp_path_factory.mktemp("commands")
    env = {**os.environ, "TFPHYS_CACHE": str(root / "cache"), "TF_CPP_MIN_LOG_LEVEL": "2"}

    # dark showers: 24 QCD, 12 SUEP at 400 GeV and 12 SVJ at 3.1 TeV (autoencoders train on the QCD)
    darkshowers = root / "darkshowers.h5"
    formats.write_darkshowers(darkshowers, [
        sparse_events(24, seed=31),
        sparse_events(12, label=1, mass=400.0, hits=(80, 200), seed=32),
        sparse_events(12, label=2, mass=3100.0, hits=(30, 120), seed=33),
    ], generator="test")
    albus = root / "albus.h5"
    storage.build(albus, n_background=6, n_per_level=3, levels=(12, 40), n_glitch=1, seed=3, workers=1,
                  psd="analytic", geometry=ALBUS_GEOMETRY, progress=False)
    data = {"darkshowers": darkshowers, "albus": albus}

    jobs, dirs = {"env": env}, {}
    for name in NAMES:
        spec = registry.get(name)
        config = root / f"{name}.toml"
        configs.save(_config(name, spec.family), config)
        dirs[name] = root / "runs" / name
        given = ["--data", data[spec.family]] if spec.family in data else []
        jobs[name] = ("tfphys-train", name, "--config", config, *given, "--out", dirs[name])
    trained = _parallel(jobs)
    for name in NAMES:
        assert f"model: {dirs[name] / 'model.keras'}" in _ok(trained[name]).stdout
    return {"root": root, "env": env, "data": data, "dirs": dirs, "stdout": {n: d.stdout for n, d in trained.items()}}


#: few timed invocations: these runs check the export, not its latency
EXPORT_FLAGS = ["--iterations", 3, "--warmup", 1]


def _score_commands(run, data, out) -> tuple[list, list]:
    """``tfphys-score`` arguments to score all of ``data`` in one shard into ``out``, then to merge ``out``."""
    return ["shard", run, "--data", data, "--out", out, "--shard", "0/1"], ["merge", out]


# ------------------------------------------------------------------------------------ train
@pytest.mark.parametrize("name", NAMES)
def test_train(runs, name):
    run = runs["dirs"][name]
    cfg = configs.load(run / "config.toml")  # resolved: the tiny [model] keys plus the schema's defaults
    assert cfg["model_name"] == name
    assert {key: cfg["model"][key] for key in TINY_MODEL[name]} == TINY_MODEL[name]
    if name == "albus":
        assert cfg["model"]["input_shape"] == [*ALBUS_GEOMETRY.shape, 3]
    assert (run / "model.keras").stat().st_size > 1000
    history = (run / "history.csv").read_text().strip().splitlines()
    assert len(history) == 2 and history[0].startswith("epoch")
    spec = registry.get(name)
    if spec.reads_data and spec.family in runs["data"]:
        assert cfg["data"]["path"] == str(runs["data"][spec.family].resolve())
    elif spec.reads_data:  # the default data, generated once into the session cache
        assert Path(cfg["data"]["path"]).parent == runs["root"] / "cache"
    else:
        assert "path" not in cfg["data"]


# ------------------------------------------------------------------------------------ load
def test_after_import_tfphys_keras_loads_every_run_in_safe_mode(runs):
    code = ("import sys, tfphys, keras\n"
            "for run in sys.argv[1:]:\n"
            "    m = keras.saving.load_model(run + '/model.keras', safe_mode=True)\n"
            "    print(m.count_params(), repr(float(sum(abs(w).sum() for w in m.get_weights()))))\n")
    done = subprocess.run([sys.executable, "-c", code, *(str(runs["dirs"][n]) for n in NAMES)], env=runs["env"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(NAMES)
    for name, line in zip(NAMES, lines):
        n_params, total = line.split()
        cfg = configs.load(runs["dirs"][name] / "config.toml")
        built = registry.build(registry.get(name), dict(cfg["model"]))  # the architecture the config says
        here = registry.load_model(runs["dirs"][name] / "model.keras")  # the weights training saved
        assert int(n_params) == built.count_params() == here.count_params(), name
        assert float(total) == pytest.approx(sum(float(np.abs(w).sum()) for w in here.get_weights()), rel=1e-6)


# ------------------------------------------------------------------------------------ export
@pytest.fixture(scope="session")
def exports(runs):
    jobs = {"env": runs["env"]}
    for name in NAMES:
        spec, run = registry.get(name), runs["dirs"][name]
        data = ["--data", runs["data"][spec.family]] if spec.labelled_sample and spec.family in runs["data"] else []
        # no sub-models (tests/export covers them): the CoDAE's three would triple the time
        jobs[name] = ("tfphys-export", run, "--float32", "--samples", 3, "--no-submodels", *data,
                      "--out", run / "export", *EXPORT_FLAGS)
    return _parallel(jobs)


@pytest.mark.parametrize("name", NAMES)
def test_export(runs, exports, name):
    spec, run, done = registry.get(name), runs["dirs"][name], exports[name]
    if not spec.exportable:
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.strip().splitlines() == [f"tfphys-export: error: {spec.not_exportable}"]
        assert not (run / "export").exists() or not list((run / "export").iterdir())
        return
    _ok(done)
    report = json.loads((run / "export" / "report.json").read_text())
    assert report["model"] == name and report["precision"] == "float32"
    assert report["source"] == str(run / "model.keras")
    assert report["max_abs_diff"] <= report["tolerance"][0]
    assert not [op for op in report["ops"] if op.startswith("Flex") or op == "CUSTOM"]
    assert (run / "export" / "model_float32.tflite").stat().st_size > 1000
    assert f"report: {run / 'export' / 'report.md'}" in done.stdout
    if spec.labelled_sample:  # 3 events of each class, ranked by the family's score on the export
        assert report["n_validation"] == 6 and report["n_auroc"] == 6
        assert report["auroc_float32"] == pytest.approx(report["auroc_keras"], abs=1e-6)
    else:
        assert report["n_validation"] == 3 and report["auroc_exported"] is None


# ------------------------------------------------------------------------------------ eval
@pytest.fixture(scope="session")
def evaluations(runs):
    """One ``tfphys-eval`` per family: the dark-shower runs together (they are compared), the others alone."""
    jobs, groups = {"env": runs["env"]}, {}
    for name in NAMES:
        groups.setdefault(registry.get(name).family, []).append(name)
    for family, names in groups.items():
        data = ["--data", runs["data"][family]] if family in runs["data"] else []
        jobs[family] = ("tfphys-eval", *(runs["dirs"][n] for n in names), *data,
                        "--out", runs["root"] / "eval" / family)
    return groups, _parallel(jobs)


#: how the dark-shower tables name each model
LABELS = {"ae": "AE", "cae": "CAE", "cct": "CCT", "codae": "CoDAE", "codvae": "Cat. CoDVAE", "dirvae": "Dirichlet VAE"}


@pytest.mark.parametrize("name", NAMES)
def test_eval(runs, evaluations, name):
    groups, done = evaluations
    family = registry.get(name).family
    out, run = runs["root"] / "eval" / family, runs["dirs"][name]
    report = Path(_ok(done[family]).stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert report.parent == out
    text = report.read_text()
    if family == "darkshowers":
        assert report.name == "tables.md"
        results = json.loads((out / "results.json").read_text())
        assert results["models"] == [LABELS[n] for n in groups[family]]
        assert (results["n_events"], results["n_signal"]) == (48, 24)
        keys = [k for k in results["detection"] if k.startswith(f"{LABELS[name]} (")]
        assert keys, sorted(results["detection"])
        for key in keys:
            auroc = results["detection"][key]["auroc"]
            assert list(auroc) == ["SUEP 400", "SVJ 3.1"] and all(0 <= v <= 1 for v in auroc.values()), key
        with h5py.File(out / "scores.h5") as f:
            assert set(keys) <= set(f) and all(len(f[k]) == 48 for k in keys)
        assert "Table 1" in text and LABELS[name] in text
    elif family == "albus":
        assert "largest_cluster" in text and "V=40" in text
        assert (out / "efficiency.png").stat().st_size > 1000
    elif family == "cbae":
        assert json.loads((out / "metrics.json").read_text())["n_test"] == 40  # 160 × val_fraction 0.25
        assert "(fig7_generation_error.png)" in text
    elif family == "leapfrog":
        assert text.startswith("# LeapfrogLayers vs HMC")
        assert f"Sampler {run}: 3×3 lattice, β = 2, 4 chains, 5 thermalisation + 20 measured" in text
    else:
        raise AssertionError(f"no check for the family {family} of {name}: add one")


# ------------------------------------------------------------------------------------ score
SCORED = [n for n in NAMES if registry.get(n).scorer is not None]


@pytest.fixture(scope="session")
def scores(runs):
    commands = {n: _score_commands(runs["dirs"][n], runs["data"][registry.get(n).family],
                                   runs["root"] / "scores" / n) for n in SCORED}
    shards = _parallel({"env": runs["env"], **{n: ("tfphys-score", *c[0]) for n, c in commands.items()}})
    merges = _parallel({"env": runs["env"], **{n: ("tfphys-score", *c[1]) for n, c in commands.items()}})
    return shards, merges


@pytest.mark.parametrize("name", SCORED)
def test_score_shard_and_merge(runs, scores, name):
    shards, merges = scores
    out = runs["root"] / "scores" / name
    assert _ok(shards[name]).stdout.strip() == f"shard 0/1: {out / 'scores-00000-of-00001.h5'}"
    assert _ok(merges[name]).stdout.strip().splitlines()[-1] == f"scores: {out / 'scores.h5'}"
    spec = registry.get(name)
    data = runs["data"][spec.family]
    with h5py.File(data) as src, h5py.File(out / "scores.h5") as f:
        n = spec.scorer.n_events(data)
        assert f.attrs["n_events"] == n and f.attrs["merged_shards"] == 1
        assert np.array_equal(f["index"][:], np.arange(n))
        for column in spec.scorer.columns:
            assert np.array_equal(f[column][:], src[column][:n]), column
        assert len(f["scores"]) >= 1
        for key in f["scores"]:  # (Dice⁻¹ of an empty reconstruction is +inf)
            assert f["scores"][key].shape == (n,) and not np.isnan(f["scores"][key][:]).any(), key
        if spec.family == "darkshowers":  # the same per-event scores as tfphys-eval's scores.h5
            with h5py.File(runs["root"] / "eval" / "darkshowers" / "scores.h5") as e:
                same = [k for k in f["scores"] if not k.startswith(("Z", "KL"))]  # Z: oriented; KL: sampled
                assert same
                for key in same:
                    np.testing.assert_allclose(f["scores"][key][:], e[f"{LABELS[name]} ({key})"][:], rtol=1e-5)
