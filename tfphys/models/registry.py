"""Model registry: a name (as in ``tfphys-train NAME`` and ``models/NAME.toml``) → :class:`ModelSpec`.

A spec bundles what the one trainer needs to train any model of any family: how to build the
Keras model from the config's ``[model]`` table, how to make its ``tf.data`` datasets, the default
dataset when no ``--data`` is given, the loss, the metrics and the monitored quantity for
model selection — and what the export toolchain needs to validate and calibrate an export:
``representative`` inputs from the training data (int8 calibration), a ``labelled_sample``
(background vs signal) and the model's main ``anomaly_score`` for anomaly detectors.
Adding a model = one entry here + one TOML file in ``models/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfphys.errors import TfphysError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., keras.Model]
    datasets: Callable[[dict[str, Any], Path, int], tuple[Any, Any]]
    default_data: Callable[[dict[str, Any]], Path]
    loss: Callable[[], keras.losses.Loss]
    metrics: Callable[[], list]
    #: the kind of data file the model reads: "darkshowers", "cbae", "albus" or "lattice" (none)
    family: str = ""
    monitor: str = "val_loss"
    mode: str = "min"
    description: str = ""
    #: (cfg, n, seed) -> model inputs from the training data, e.g. masks (n, 72, 58, 1)
    representative: Callable[[dict[str, Any], int, int], Any] | None = None
    #: (cfg, path or None, n_per_class, seed) -> (inputs, is_signal); None path: a default sample
    labelled_sample: Callable[[dict[str, Any], Path | None, int, int], tuple[Any, Any]] | None = None
    #: (inputs, model outputs) -> per-event score, larger = more anomalous
    anomaly_score: Callable[[Any, Any], Any] | None = None
    #: what ``tfphys-eval RUN`` runs: (run_dir, cfg, out_dir, data path or None, seed) -> the
    #: report file it wrote (Markdown, with its PNGs beside it). Families that compare several
    #: runs (``tfphys-eval RUN1 RUN2 …``) also accept ``others=[(run_dir, cfg), …]``.
    evaluate: Callable[[Path, dict[str, Any], Path, Path | None, int], Path] | None = None
    #: non-empty: why the model trains on one replica only (a multi-replica strategy is refused)
    single_replica: str = ""


def _darkshower_autoencoder_datasets(cfg, path, seed):
    from tfphys.pipelines.darkshowers import autoencoder_datasets

    data, pipe = cfg["data"], cfg["pipeline"]
    return autoencoder_datasets(
        path,
        batch_size=int(pipe.get("batch_size", 128)),
        seed=seed,
        classes=tuple(data.get("classes", (0,))),
        val_fraction=float(data.get("val_fraction", 0.1)),
        max_events=data.get("max_events"),
        shuffle_buffer=int(pipe.get("shuffle_buffer", 10_000)),
        augmentation=bool(pipe.get("augmentation", True)),
        read_block=int(pipe.get("read_block", 64)),
        cache=bool(pipe.get("cache", True)),
        signal_fraction=float(data.get("signal_fraction", 0.0)),  # weak supervision (dirvae)
    )


def _darkshower_default_data(cfg):
    from tfphys.data.darkshowers import default_dataset

    data = cfg["data"]
    return default_dataset(data.get("default_process", "qcd"), int(data.get("default_n", 2000)),
                           int(data.get("default_seed", 20240902)))


def _darkshower_representative(cfg, n, seed):
    from tfphys.pipelines.darkshowers import load_masks, split_events

    data = cfg["data"]
    path = Path(data["path"]) if data.get("path") else _darkshower_default_data(cfg)
    split = split_events(path, classes=tuple(data.get("classes", (0,))),
                         val_fraction=float(data.get("val_fraction", 0.1)), seed=seed)
    chosen = np.random.default_rng(seed).permutation(split.train)[:n]
    return load_masks(path, chosen)


def _darkshower_labelled_sample(cfg, path, n_per_class, seed):
    from tfphys.data.darkshowers import default_dataset
    from tfphys.pipelines.darkshowers import labelled_sample

    if path is None:  # n QCD events and n at each of the 9 signal mass points, generated once
        seed_data = int(cfg.get("data", {}).get("default_seed", 20240902)) + 1
        path = default_dataset("all", n_per_class, seed_data)
    return labelled_sample(path, n_per_class, seed=seed)


def _darkshower_autoencoder(name, build, description):
    from tfphys.evaluation.darkshowers import evaluate
    from tfphys.evaluation.scores import bce
    from tfphys.losses import SSIM, SummedBinaryCrossentropy

    return ModelSpec(
        name=name, build=build, datasets=_darkshower_autoencoder_datasets,
        default_data=_darkshower_default_data, loss=SummedBinaryCrossentropy, family="darkshowers",
        metrics=lambda: [SSIM()], monitor="val_ssim", mode="max", description=description,
        representative=_darkshower_representative, labelled_sample=_darkshower_labelled_sample,
        anomaly_score=bce, evaluate=evaluate,
    )


# ------------------------------------------------ dark-shower trainable baselines (CoDAE §5.2)
# Imported here so that ``keras.saving.load_model`` knows their layers (keras + numpy only).
from tfphys.models import baselines as _baselines  # noqa: E402


def _darkshower_classifier_datasets(cfg, path, seed):
    from tfphys.pipelines.darkshowers import classifier_datasets

    data, pipe = cfg["data"], cfg["pipeline"]
    return classifier_datasets(
        path,
        batch_size=int(pipe.get("batch_size", 128)),
        seed=seed,
        num_classes=int(cfg["model"].get("num_classes", 3)),
        val_fraction=float(data.get("val_fraction", 0.2)),
        max_events=data.get("max_events"),
        shuffle_buffer=int(pipe.get("shuffle_buffer", 10_000)),
        augmentation=bool(pipe.get("augmentation", True)),
        read_block=int(pipe.get("read_block", 64)),
        cache=bool(pipe.get("cache", True)),
        balance=bool(pipe.get("balance", True)),
    )


def _darkshower_baselines() -> list[ModelSpec]:
    """The AE of Heimel et al., the weakly supervised Dirichlet VAE and the supervised CCT."""
    import keras

    from tfphys.evaluation.darkshowers import evaluate
    from tfphys.losses import SSIM

    common = dict(family="darkshowers", default_data=_darkshower_default_data,
                  representative=_darkshower_representative,
                  labelled_sample=_darkshower_labelled_sample, evaluate=evaluate)
    return [
        ModelSpec(name="ae", build=_baselines.build_ae, datasets=_darkshower_autoencoder_datasets,
                  loss=_baselines.SummedSquaredError, metrics=lambda: [SSIM()],
                  monitor="val_loss", mode="min", anomaly_score=_baselines.ae_score,
                  description="AE baseline after Heimel et al. (dark showers, CoDAE §5.2)", **common),
        ModelSpec(name="dirvae", build=_baselines.build_dirvae, datasets=_darkshower_autoencoder_datasets,
                  loss=_baselines.MultinomialNLL, metrics=lambda: [],
                  monitor="val_loss", mode="min", anomaly_score=_baselines.dirvae_score,
                  description="weakly supervised Dirichlet VAE of Dillon et al. (dark showers, CoDAE §5.2)",
                  **common),
        ModelSpec(name="cct", build=_baselines.build_cct, datasets=_darkshower_classifier_datasets,
                  loss=lambda: keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=lambda: [_baselines.SignalAUC(), keras.metrics.CategoricalAccuracy(name="accuracy")],
                  monitor="val_signal_auc", mode="max", anomaly_score=_baselines.cct_score,
                  description="supervised Compact Convolutional Transformer, the upper bound (CoDAE §5.2)",
                  **common),
    ]


# ----------------------------------------------------------------- LeapfrogLayers (2D U(1))
# Registered at import so that ``keras.saving.load_model`` (e.g. in tfphys-export, which loads a
# run's model before asking the registry) knows the sampler's classes.
from tfphys.models import leapfrog as _leapfrog  # noqa: E402,F401

#: LeapfrogLayers reads no data file: it trains on its own Markov chains (kept in the model).
_NO_DATA = Path("/dev/null")


def _leapfrog_default_data(cfg):
    return _NO_DATA


def _leapfrog_datasets(cfg, path, seed):
    """The "data" of a sampler: ``tf.data`` streams of step indices ("ticks"), one trajectory of
    every chain per element. The annealed β_t is computed in ``train_step`` from the optimizer's
    step count (so a resumed run continues the schedule); ``[pipeline] steps_per_epoch`` ticks
    per epoch train, ``val_steps`` ticks run the validation chains at the target β."""
    import tensorflow as tf

    if Path(path) != _NO_DATA:
        raise TfphysError(f"leapfrog reads no data file (it samples its own configurations); "
                          f"drop --data / [data] path (got {path})")
    pipe = cfg.get("pipeline", {})
    steps, val_steps = int(pipe.get("steps_per_epoch", 100)), int(pipe.get("val_steps", 10))
    if steps < 1 or val_steps < 1:
        raise TfphysError(f"[pipeline] steps_per_epoch and val_steps must be ≥ 1, got {steps}, {val_steps}")
    return tf.data.Dataset.range(steps), tf.data.Dataset.range(val_steps)


def _leapfrog_no_export(cfg, n, seed):
    raise TfphysError("leapfrog is an MCMC sampler (random trajectories + Metropolis test), not an "
                      "inference model: it has no TFLite export; evaluate it with tfphys-eval RUN")


def _leapfrog_evaluate(run_dir, cfg, out_dir, data, seed):
    from tfphys.evaluation.lattice import evaluate_run

    return evaluate_run(run_dir, cfg, out_dir, data, seed)


def _leapfrog_spec():
    return ModelSpec(
        name="leapfrog", build=_leapfrog.build_leapfrog, datasets=_leapfrog_datasets,
        default_data=_leapfrog_default_data, loss=lambda: None, metrics=lambda: [], family="lattice",
        monitor="val_loss", mode="min",
        description="LeapfrogLayers: trainable generalised HMC for 2D U(1) (Foreman et al. 2021)",
        representative=_leapfrog_no_export, evaluate=_leapfrog_evaluate,
        single_replica="its data are its own Markov chains, held in the model: every replica would run "
                       "the same chains, and the chain update is not a mirrored one",
    )


# ----------------------------------------------------------------- CBAE (toy detector waveforms)
def _cbae_datasets(cfg, path, seed):
    from tfphys.pipelines.waveforms import cbae_datasets

    data, pipe = cfg["data"], cfg["pipeline"]
    return cbae_datasets(path, batch_size=int(pipe.get("batch_size", 32)), seed=seed,
                         val_fraction=float(data.get("val_fraction", 0.2)),
                         max_waveforms=data.get("max_waveforms"))


def _cbae_default_data(cfg):
    from tfphys.data.waveforms import default_dataset

    data = cfg["data"]
    return default_dataset(int(data.get("default_n", 50_000)), int(data.get("default_seed", 20220601)))




def _cbae_representative(cfg, n, seed):
    from tfphys.data.waveforms import count, read_waveforms
    from tfphys.pipelines.waveforms import split

    data = cfg.get("data", {})
    path = Path(data["path"]) if data.get("path") else _cbae_default_data(cfg)
    parts = split(count(path), float(data.get("val_fraction", 0.2)), data.get("max_waveforms"))
    chosen = np.sort(np.random.default_rng(seed).permutation(parts.n_train)[:n])
    train = read_waveforms(path, 0, int(chosen[-1]) + 1, clean=False)
    return train.waveforms[chosen]


def _cbae_evaluate(run_dir, cfg, out_dir, data, seed):
    from tfphys.evaluation.cbae import evaluate

    return evaluate(run_dir, cfg, out_dir, data, seed)


def _cbae_spec():
    from tfphys.models import cbae

    return ModelSpec(
        name="cbae", build=cbae.build_cbae, datasets=_cbae_datasets, default_data=_cbae_default_data,
        loss=cbae.ConstrainedBottleneckLoss, metrics=cbae.loss_terms, family="cbae",
        monitor="val_loss", mode="min",
        description="constrained bottleneck autoencoder (toy detector waveforms, Jesús-Valls et al.)",
        representative=_cbae_representative, evaluate=_cbae_evaluate,
    )


from tfphys.models import albus as _albus  # noqa: E402,F401  (registers CropOrPadTo for load_model)


def _albus_default_data(cfg):
    from tfphys.data.gw import default_dataset

    data = cfg["data"]
    return default_dataset(int(data.get("default_background", 36)), int(data.get("default_per_level", 4)),
                           int(data.get("default_seed", 20220121)), psd=data.get("psd", "auto"))


def _albus_datasets(cfg, path, seed):
    from tfphys.pipelines.gw import albus_datasets

    data, pipe = cfg["data"], cfg["pipeline"]
    return albus_datasets(path, batch_size=int(pipe.get("batch_size", 20)), seed=seed,
                          val_fraction=float(data.get("val_fraction", 0.1)),
                          max_maps=data.get("max_maps"), cache=bool(pipe.get("cache", True)),
                          target=str(pipe.get("target", "max")))


def _albus_representative(cfg, n, seed):
    from tfphys.evaluation.albus import representative

    data = cfg.get("data", {})
    return representative(Path(data["path"]) if data.get("path") else _albus_default_data(cfg), n, seed,
                          val_fraction=float(data.get("val_fraction", 0.1)))


def _albus_labelled_sample(cfg, path, n_per_class, seed):
    from tfphys.evaluation.albus import default_eval_data, labelled_sample

    return labelled_sample(path or default_eval_data(cfg), n_per_class, seed)


def _albus_spec():
    from tfphys.evaluation import albus as albus_eval
    from tfphys.models import albus

    return ModelSpec(
        name="albus", build=albus.build_albus, datasets=_albus_datasets, default_data=_albus_default_data,
        loss=keras.losses.MeanSquaredError, metrics=lambda: [], family="albus", monitor="val_loss",
        mode="min", description="pixel-wise U-Net on H1-L1 coherence maps (GW long-duration bursts, ALBUS)",
        representative=_albus_representative, labelled_sample=_albus_labelled_sample,
        anomaly_score=albus_eval.map_sum, evaluate=albus_eval.evaluate,
    )


def _specs() -> dict[str, ModelSpec]:
    from tfphys.models import codae, codvae

    specs = [
        _darkshower_autoencoder("codae", codae.build_codae,
                                "conditional dual auto-encoder (dark showers, CoDAE §4.3-4.4)"),
        _darkshower_autoencoder("cae", codae.build_cae,
                                "convolutional auto-encoder baseline (dark showers, CoDAE §5.2)"),
        _darkshower_autoencoder("codvae", codvae.build_codvae,
                                "categorical conditional dual VAE (dark showers, CoDAE §4.5)"),
        *_darkshower_baselines(),
        _leapfrog_spec(),
        _cbae_spec(),
        _albus_spec(),
    ]
    return {spec.name: spec for spec in specs}


def names() -> list[str]:
    return sorted(_specs())


def get(name: str) -> ModelSpec:
    specs = _specs()
    if name not in specs:
        raise TfphysError(f"unknown model {name!r}; known models: {', '.join(sorted(specs))}")
    return specs[name]


def load_model(path) -> keras.Model:
    """A trained ``model.keras`` (safe mode, not compiled), with one clear error if it is not one.

    This module imports every family's custom layers, so any tfphys model loads through here.
    """
    import zipfile

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError) as err:
        raise TfphysError(f"could not load a Keras model from {path}: {err}") from None


def build(spec: ModelSpec, model_cfg: dict[str, Any]) -> keras.Model:
    """Build ``spec``'s model from a ``[model]`` table, refusing unknown keys by name."""
    import inspect

    accepted = inspect.signature(spec.build).parameters
    unknown = sorted(set(model_cfg) - set(accepted))
    if unknown:
        raise TfphysError(
            f"[model] of {spec.name} has unknown key(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    return spec.build(**model_cfg)
