"""Dark showers at the CMS HLT (Anzalone et al. 2024): CoDAE, CAE, CoDVAE and the §5.2 baselines.

The paper's pieces, in the order data flow through them:

* ``toy`` (built-in simulator), ``pythia`` (Pythia 8, extra ``tfphys[pythia]``) and ``detector``
  (the imaging both share) → ``generate`` (what ``tfphys-data darkshowers`` runs) and
  ``importer`` (your own images, ``tfphys-data import``) → ``format`` (the HDF5 layout);
* ``pipeline`` (Algorithm 1 masks, §4.2 augmentations, ``tf.data``);
* ``codae``, ``codvae``, ``baselines`` (models), ``layers`` and ``losses``;
* ``scores`` (§4.6 anomaly scores) and ``evaluate`` (Tables 1–2, Figures 5–8).

This module declares the family's models for the registry (:data:`FAMILY`).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from tfphys.darkshowers import baselines, codae, codvae, commands, evaluate, generate, pipeline, scores
from tfphys.darkshowers import format as formats
from tfphys.darkshowers.losses import SSIM, SummedBinaryCrossentropy
from tfphys.registry import Family, FileKind, ModelSpec, Scorer


def _autoencoder_datasets(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.autoencoder_datasets(
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


def _classifier_datasets(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.classifier_datasets(
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


def _default_data(cfg):
    data = cfg["data"]
    return generate.default_dataset(data.get("default_process", "qcd"), int(data.get("default_n", 2000)),
                                    int(data.get("default_seed", 20240902)))


def _representative(cfg, n, seed):
    data = cfg["data"]
    path = Path(data["path"]) if data.get("path") else _default_data(cfg)
    split = pipeline.split_events(path, classes=tuple(data.get("classes", (0,))),
                                  val_fraction=float(data.get("val_fraction", 0.1)), seed=seed)
    chosen = np.random.default_rng(seed).permutation(split.train)[:n]
    return pipeline.load_masks(path, chosen)


def _labelled_sample(cfg, path, n_per_class, seed):
    if path is None:  # n QCD events and n at each of the 9 signal mass points, generated once
        seed_data = int(cfg.get("data", {}).get("default_seed", 20240902)) + 1
        path = generate.default_dataset("all", n_per_class, seed_data)
    return pipeline.labelled_sample(path, n_per_class, seed=seed)


def _n_events(path):
    with formats.open_darkshowers(path) as f:
        return int(f["label"].shape[0])


def _score(model, spec, path, start, stop, seed):
    values, _ = evaluate.model_scores(model, spec, pipeline.load_masks(path, np.arange(start, stop)), seed=seed)
    return values


SCORER = Scorer(file_kind="darkshowers", chunk=1024, n_events=_n_events,
                columns=("label", "mass", "n_tracks"), score=_score)

_COMMON = dict(family="darkshowers", default_data=_default_data, representative=_representative,
               labelled_sample=_labelled_sample, evaluate=evaluate.evaluate, compares_runs=True,
               scorer=SCORER)


def _autoencoder(name, build, description):
    return ModelSpec(name=name, build=build, datasets=_autoencoder_datasets, loss=SummedBinaryCrossentropy,
                     metrics=lambda: [SSIM()], monitor="val_ssim", mode="max", description=description,
                     anomaly_score=scores.bce, **_COMMON)


SPECS = (
    _autoencoder("codae", codae.build_codae, "conditional dual auto-encoder (dark showers, CoDAE §4.3-4.4)"),
    _autoencoder("cae", codae.build_cae, "convolutional auto-encoder baseline (dark showers, CoDAE §5.2)"),
    _autoencoder("codvae", codvae.build_codvae, "categorical conditional dual VAE (dark showers, CoDAE §4.5)"),
    ModelSpec(name="ae", build=baselines.build_ae, datasets=_autoencoder_datasets,
              loss=baselines.SummedSquaredError, metrics=lambda: [SSIM()], monitor="val_loss", mode="min",
              anomaly_score=baselines.ae_score,
              description="AE baseline after Heimel et al. (dark showers, CoDAE §5.2)", **_COMMON),
    ModelSpec(name="dirvae", build=baselines.build_dirvae, datasets=_autoencoder_datasets,
              loss=baselines.MultinomialNLL, metrics=lambda: [], monitor="val_loss", mode="min",
              anomaly_score=baselines.dirvae_score,
              description="weakly supervised Dirichlet VAE of Dillon et al. (dark showers, CoDAE §5.2)",
              **_COMMON),
    ModelSpec(name="cct", build=baselines.build_cct, datasets=_classifier_datasets,
              loss=lambda: keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
              metrics=lambda: [baselines.SignalAUC(), keras.metrics.CategoricalAccuracy(name="accuracy")],
              monitor="val_signal_auc", mode="max", anomaly_score=baselines.cct_score,
              description="supervised Compact Convolutional Transformer, the upper bound (CoDAE §5.2)",
              **_COMMON),
)

FAMILY = Family(
    name="darkshowers",
    description="anomaly detection for dark showers at the CMS HLT (CoDAE paper)",
    specs=SPECS,
    data_commands=commands.COMMANDS,
    file_kinds=(FileKind("darkshowers", formats.is_darkshowers_file, formats.summary),),
)
