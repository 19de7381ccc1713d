"""A config is checked whole against its model's schema (tfphys.config): unknown sections and keys
and wrong types are one line with the closest valid name, defaults fill what a config leaves out,
the saved config repeats the run, and the run's one seed reaches the leapfrog chains."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tfphys import config as configs
from tfphys import registry, training
from tfphys.errors import TfphysError

LEAPFROG = """
[pipeline]
steps_per_epoch = 2
val_steps = 1
[model]
lattice_size = 2
n_leapfrog = 1
n_chains = 2
units = [2]
[train]
epochs = 1
"""


def _whole(name, **sections):
    """models/NAME.toml with ``sections`` merged into its tables."""
    cfg = configs.load(configs.default_config_path(name))
    for section, keys in sections.items():
        cfg.setdefault(section, {}).update(keys)
    return cfg


def _error(name, cfg):
    with pytest.raises(TfphysError) as info:
        configs.resolve(registry.get(name), cfg)
    return str(info.value)


@pytest.mark.parametrize("name, section, key, message", [
    ("cbae", "train", "learning_rat", "[train] learning_rat: unknown key; did you mean [train.optimizer] "
                                      "learning_rate?"),
    ("cbae", "train", "learning_rate", "[train] learning_rate: unknown key; did you mean [train.optimizer] "
                                       "learning_rate?"),
    ("codae", "train", "epoch", "[train] epoch: unknown key; did you mean epochs?"),
    ("codae", "data", "val_fractoin", "[data] val_fractoin: unknown key; did you mean val_fraction?"),
    ("codae", "data", "batch_size", "[data] batch_size: unknown key; did you mean [pipeline] batch_size?"),
    ("albus", "pipeline", "batchsize", "[pipeline] batchsize: unknown key; did you mean batch_size?"),
    ("codae", "model", "latent_dims", "[model] latent_dims: unknown key; did you mean latent_dim?"),
    ("leapfrog", "eval", "trajectoires", "[eval] trajectoires: unknown key; did you mean trajectories?"),
    ("leapfrog", "model", "seed", "[model] seed: unknown key; did you mean [train] seed? (one seed per run: it "
                                  "starts the chains and draws the masks)"),
    ("codvae", "model", "prior_seed", "[model] prior_seed: unknown key; did you mean [train] seed? (one seed per "
                                      "run: it draws the prior temperatures)"),
    ("cbae", "pipeline", "zzz", "[pipeline] zzz: unknown key (keys of [pipeline]: batch_size)"),
])
def test_an_unknown_key_names_section_key_and_the_closest_valid_name(name, section, key, message):
    assert _error(name, _whole(name, **{section: {key: 1}})) == message


@pytest.mark.parametrize("section, key, value, message", [
    ("pipeline", "batch_size", "32", '[pipeline] batch_size: expected an integer, got "32"'),
    ("pipeline", "batch_size", True, "[pipeline] batch_size: expected an integer, got true"),
    ("pipeline", "augmentation", 1, "[pipeline] augmentation: expected a boolean, got 1"),
    ("data", "val_fraction", "0.1", '[data] val_fraction: expected a number, got "0.1"'),
    ("data", "classes", 0, "[data] classes: expected a list of integers, got 0"),
    ("model", "encoder_filters", [8, "8"], '[model] encoder_filters: expected a list of integers, got [8, "8"]'),
    ("data", "max_events", 1.5, "[data] max_events: expected an integer, got 1.5"),
    ("train", "optimizer", "Adam", '[train] optimizer: expected a table, got "Adam"'),
])
def test_a_value_of_the_wrong_type_is_one_line(section, key, value, message):
    assert _error("codae", _whole("codae", **{section: {key: value}})) == message


def test_an_integer_is_a_number_and_values_are_kept_as_given():
    cfg = configs.resolve(registry.get("codae"), _whole("codae", model={"leaky_slope": 1}, data={"max_events": 7}))
    assert cfg["model"]["leaky_slope"] == 1 and type(cfg["model"]["leaky_slope"]) is int
    assert cfg["data"]["max_events"] == 7
    ae = configs.resolve(registry.get("ae"), _whole("ae"))
    assert ae["model"]["encoder_filters"] == [[32, 32], [64, 64], [64, 64]]
    with pytest.raises(TfphysError, match=r"^\[model\] encoder_filters: expected a list of lists of integers, "
                                          r"got \[32, 64\]$"):
        configs.resolve(registry.get("ae"), _whole("ae", model={"encoder_filters": [32, 64]}))


def test_an_unknown_section_or_top_level_key_is_one_line():
    assert _error("leapfrog", {**_whole("leapfrog"), "evaluate": {}}) == \
        "[evaluate]: unknown section; did you mean [eval]?"
    assert _error("codae", {**_whole("codae"), "eval": {"x": 1}}) == \
        "[eval]: unknown section (sections of codae: data, pipeline, model, train)"
    assert _error("codae", {**_whole("codae"), "epochs": 3}) == \
        "epochs: unknown key at the top of the config (keys belong in a section); did you mean [train] epochs?"
    assert _error("codae", {**_whole("codae"), "model_name": "cae"}) == \
        'model_name = "cae": this config is of the model cae, not codae; train cae or remove model_name'
    assert _error("codae", {**_whole("codae"), "train": 3}) == "[train] must be a table, got 3"


def test_unknown_keys_come_before_missing_required_ones():
    assert _error("codae", {"model": {"some_key": 3}}).startswith("[model] some_key: unknown key")
    assert _error("codae", {"model": {}}) == "config is missing [train] epochs"
    # partial (a hand-made run dir read by tfphys-eval): the required key is left out, the rest filled in
    cfg = configs.resolve(registry.get("codae"), {"model": {}}, partial=True)
    assert "epochs" not in cfg["train"] and cfg["train"]["seed"] == 0 and cfg["pipeline"]["batch_size"] == 128


@pytest.mark.parametrize("name", registry.names())
def test_every_models_toml_validates_against_its_schema(name):
    spec = registry.get(name)
    raw = configs.load(configs.default_config_path(name))
    cfg = configs.resolve(spec, raw)
    schema = configs.schema_of(spec)
    assert set(cfg) == {s for s in configs.ALL_SECTIONS if s in schema}
    for section, table in schema.items():  # every key of the schema, the file's value or the default
        keys = {k for k, v in table.items() if isinstance(v, configs.Key)}
        assert set(cfg[section]) == keys
        for key in keys:
            expected = raw.get(section, {}).get(key, table[key].default)
            assert cfg[section][key] == expected, (section, key)
    assert configs.resolve(spec, cfg) == cfg  # resolving is idempotent


def test_schema_defaults_are_the_defaults_the_code_used():
    from tfphys.leapfrog.evaluate import DEFAULTS

    def defaults(name, section):
        return {k: v.default for k, v in configs.schema_of(registry.get(name))[section].items()
                if isinstance(v, configs.Key)}

    assert defaults("leapfrog", "eval") == DEFAULTS
    assert defaults("leapfrog", "pipeline") == {"steps_per_epoch": 100, "val_steps": 10}
    assert defaults("cbae", "data") == {"path": None, "val_fraction": 0.2, "max_waveforms": None, "default_n": 50_000,
                                        "default_seed": 20220601}
    assert defaults("albus", "pipeline") == {"batch_size": 20, "cache": True, "target": "max"}
    assert defaults("cct", "data")["val_fraction"] == 0.2 and defaults("codae", "data")["val_fraction"] == 0.1
    assert defaults("codae", "model")["output_bias"] == -1.0 and "name" not in defaults("codae", "model")
    assert defaults("codvae", "train") == {"epochs": configs.REQUIRED, "seed": 0, "optimizer": {"class_name": "Adam"}}


def test_the_saved_config_holds_every_value_and_repeats_the_run(tmp_path):
    (tmp_path / "short.toml").write_text(LEAPFROG)
    first = training.train("leapfrog", configs.load(tmp_path / "short.toml"), tmp_path / "a", verbose=0)
    saved = configs.load(tmp_path / "a" / "config.toml")
    assert saved["model_name"] == "leapfrog"
    assert saved["model"] == {"lattice_size": 2, "n_leapfrog": 1, "n_chains": 2, "beta": 6.0, "beta_init": 2.0,
                              "anneal_steps": 0, "anneal_eras": 0, "step_size": 0.1, "units": [2],
                              "activation": "swish", "output_scale": 0.0, "init": "heating", "heating": 0.025,
                              "x_scale": False, "loss": "mixed", "loss_weight": 0.01}
    assert saved["train"] == {"epochs": 1, "seed": 0, "optimizer": {"class_name": "Adam"}}
    assert saved["eval"] == {"thermalise": 600, "trajectories": 1000, "betas": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
                             "scan_trajectories": 300, "scan_thermalise": 300, "lengths": [10, 20, 40],
                             "hmc_step_sizes": [0.1, 0.125]}  # chains and the caps: None
    assert saved["data"] == {}  # path None: left out (TOML has no None), given back when resolved
    assert configs.resolve(registry.get("leapfrog"), saved)["eval"]["chains"] is None
    again = training.train("leapfrog", saved, tmp_path / "b", verbose=0)  # --config RUN/config.toml
    assert (tmp_path / "b" / "config.toml").read_text() == (tmp_path / "a" / "config.toml").read_text()
    def measured(history):  # the leapfrog history also logs the training's CPU seconds, which vary run to run
        return [{k: v for k, v in row.items() if not k.endswith("train_cpu_s")} for row in history]

    assert measured(again.history) == measured(first.history)


def test_resume_compares_resolved_configs(tmp_path):
    spec = registry.get("leapfrog")
    out = tmp_path / "run"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "epoch-00001.weights.h5").write_text("x")  # the committed state of one epoch
    full = {"model_name": "leapfrog", **configs.resolve(spec, tomllib.loads(LEAPFROG))}
    configs.save(full, out / "config.toml")
    short = {"model_name": "leapfrog", **configs.resolve(spec, tomllib.loads(LEAPFROG))}
    assert training._prepare_out_dir(out, short, resume=False, spec=spec) is True  # the same run, resumed
    more = configs.override(short, "train", "epochs", 5)  # a longer run: still the same
    assert training._prepare_out_dir(out, more, resume=False, spec=spec) is True
    other = configs.override(short, "model", "beta", 5.0)
    with pytest.raises(TfphysError, match="holds an unfinished run with a different config"):
        training._prepare_out_dir(out, other, resume=False, spec=spec)


def _leapfrog(seed):
    spec = registry.get("leapfrog")
    cfg = configs.resolve(spec, configs.override(tomllib.loads(LEAPFROG), "train", "seed", seed))
    return registry.build(spec, configs.build_kwargs(spec, cfg))


def test_the_run_seed_reaches_the_leapfrog_chains_and_masks():
    zero, three, three_again = _leapfrog(0), _leapfrog(3), _leapfrog(3)
    assert (zero.seed, zero.mask_seed, three.seed, three.mask_seed) == (0, 0, 3, 3)
    np.testing.assert_array_equal(three.chain_x.numpy(), three_again.chain_x.numpy())
    np.testing.assert_array_equal(three.masks, three_again.masks)
    assert np.abs(three.chain_x.numpy() - zero.chain_x.numpy()).max() > 0.1
    x = three.chain_x.numpy()
    assert not np.array_equal(three.sample(x, 2, seed=three.seed).charge_real, zero.sample(x, 2, seed=zero.seed)
                              .charge_real)


def test_the_run_seed_draws_the_codvae_prior():
    from tfphys.darkshowers.codvae import build_codvae

    spec = registry.get("codvae")
    tiny = dict(encoder_filters=[4] * 4, mask_filters=[4] * 4, decoder_filters=[4] * 4, latent_channels=4)
    for seed in (0, 3):
        cfg = configs.resolve(spec, {"model": tiny, "train": {"epochs": 1, "seed": seed}})
        kwargs = configs.build_kwargs(spec, cfg)
        assert kwargs["seed"] == seed
        taus = build_codvae(**kwargs).get_layer("latent").prior_temperatures
        assert taus == np.random.default_rng(seed).uniform(0.1, 1.0, 10).tolist()


def test_tfphys_train_refuses_a_bad_config_in_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(LEAPFROG.replace("[train]\n", "[train]\nlearning_rat = 1e-3\n"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([str(Path(sys.executable).parent / "tfphys-train"), "leapfrog", "--config", str(bad),
                           "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("tfphys-train: error: [train] learning_rat: unknown key; "
                                                    "did you mean [train.optimizer] learning_rate?")
    assert not (tmp_path / "run").exists()
