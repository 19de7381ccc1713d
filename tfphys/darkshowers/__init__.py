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

from tfphys import config as configs
from tfphys.config import Key, Moved
from tfphys.darkshowers import baselines, codae, codvae, commands, evaluate, generate, pipeline, scores
from tfphys.darkshowers import format as formats
from tfphys.darkshowers.losses import SSIM, SummedBinaryCrossentropy
from tfphys.registry import Family, FileKind, ModelSpec, Scorer


def _reading(cfg, seed):
    """The keyword arguments both dark-shower pipelines take from the (resolved) config."""
    data, pipe = cfg["data"], cfg["pipeline"]
    return dict(batch_size=pipe["batch_size"], seed=seed, val_fraction=float(data["val_fraction"]),
                max_events=data["max_events"], shuffle_buffer=pipe["shuffle_buffer"],
                augmentation=pipe["augmentation"], read_block=pipe["read_block"], cache=pipe["cache"])


def _autoencoder_datasets(cfg, path, seed):
    return pipeline.autoencoder_datasets(path, classes=tuple(cfg["data"]["classes"]),
                                         signal_fraction=float(cfg["data"]["signal_fraction"]),  # weak supervision
                                         **_reading(cfg, seed))


def _classifier_datasets(cfg, path, seed):
    return pipeline.classifier_datasets(path, num_classes=cfg["model"]["num_classes"],
                                        balance=cfg["pipeline"]["balance"], **_reading(cfg, seed))


def _autoencoder_epochs(cfg, path, seed):
    return pipeline.autoencoder_epochs(path, classes=tuple(cfg["data"]["classes"]),
                                       signal_fraction=float(cfg["data"]["signal_fraction"]), **_reading(cfg, seed))


def _classifier_epochs(cfg, path, seed):
    return pipeline.classifier_epochs(path, num_classes=cfg["model"]["num_classes"],
                                      balance=cfg["pipeline"]["balance"], **_reading(cfg, seed))


def _default_data(cfg):
    data = cfg["data"]
    return generate.default_dataset(data["default_process"], int(data["default_n"]), int(data["default_seed"]))


def _representative(cfg, n, seed):
    data = cfg["data"]
    path = Path(data["path"]) if data["path"] else _default_data(cfg)
    split = pipeline.split_events(path, classes=tuple(data["classes"]), val_fraction=float(data["val_fraction"]),
                                  seed=seed)
    chosen = np.random.default_rng(seed).permutation(split.train)[:n]
    return pipeline.load_masks(path, chosen)


def _labelled_sample(cfg, path, n_per_class, seed):
    if path is None:  # n QCD events and n at each of the 9 signal mass points, generated once
        seed_data = int(cfg["data"]["default_seed"]) + 1
        path = generate.default_dataset("all", n_per_class, seed_data)
    return pipeline.labelled_sample(path, n_per_class, seed=seed)


def _sample_classes(cfg, path, n_per_class, seed):
    if path is None:  # the same default sample as _labelled_sample's
        path = generate.default_dataset("all", n_per_class, int(cfg["data"]["default_seed"]) + 1)
    return evaluate.labelled_classes(path, n_per_class, seed=seed)


# The keys, types and defaults of every section (tfphys.config; [model]: the build functions').
_DATA = {
    "classes": Key(list[int], [0], "the labels trained on (autoencoders: the background, 0 = QCD)"),
    "val_fraction": Key(float, 0.1, "validation hold-out fraction"),
    "max_events": Key(int | None, None, "use at most this many events of the file (unset: all)"),
    "default_process": Key(str, "qcd", "without --data: the toy simulator's process (qcd, all, ...)"),
    "default_n": Key(int, 2000, "without --data: events generated (and cached)"),
    "default_seed": Key(int, 20240902, "without --data: the generator's seed"),
}
_AUTOENCODER_DATA = {
    **_DATA,
    "signal_fraction": Key(float, 0.0, "weak supervision: signal events mixed into the training data"),
}
_CLASSIFIER_DATA = {**_DATA, "classes": Key(list[int], [0], "the labels of the data (a classifier reads them all)"),
                    "val_fraction": Key(float, 0.2, "stratified validation hold-out fraction")}
_PIPELINE = {
    "batch_size": Key(int, 128, "events per batch (the global batch under a strategy)"),
    "shuffle_buffer": Key(int, 10_000, "tf.data shuffle buffer"),
    "augmentation": Key(bool, True, "the §4.2 augmentations (η-flip, φ-roll)"),
    "read_block": Key(int, 64, "events read from the HDF5 file at a time"),
    "cache": Key(bool, True, "keep the masks in memory after the first epoch"),
}
_CLASSIFIER_PIPELINE = {**_PIPELINE, "balance": Key(bool, True, "class weights n/(C·n_c)")}


def _schema(build, data=_AUTOENCODER_DATA, pipe=_PIPELINE, **model):
    return {"data": data, "pipeline": pipe, "model": {**configs.model_keys(build), **model}}


def _n_events(path):
    with formats.open_darkshowers(path) as f:
        return int(f["label"].shape[0])


def _score(model, spec, path, start, stop, seed):
    values, _ = evaluate.model_scores(model, spec, pipeline.load_masks(path, np.arange(start, stop)), seed=seed)
    return values


SCORER = Scorer(file_kind="darkshowers", chunk=1024, n_events=_n_events,
                columns=("label", "mass", "n_tracks"), score=_score)

_COMMON = dict(family="darkshowers", default_data=_default_data, representative=_representative,
               labelled_sample=_labelled_sample, sample_classes=_sample_classes, evaluate=evaluate.evaluate,
               compares_runs=True,
               scorer=SCORER)


def _autoencoder(name, build, description, **schema):
    return ModelSpec(name=name, build=build, datasets=_autoencoder_datasets, epochs=_autoencoder_epochs,
                     loss=SummedBinaryCrossentropy,
                     metrics=lambda: [SSIM()], monitor="val_ssim", mode="max", description=description,
                     anomaly_score=scores.bce, schema=_schema(build, **schema), **_COMMON)


SPECS = (
    _autoencoder("codae", codae.build_codae, "conditional dual auto-encoder (dark showers, CoDAE §4.3-4.4)"),
    _autoencoder("cae", codae.build_cae, "convolutional auto-encoder baseline (dark showers, CoDAE §5.2)"),
    _autoencoder("codvae", codvae.build_codvae, "categorical conditional dual VAE (dark showers, CoDAE §4.5)",
                 prior_seed=Moved("[train] seed", "one seed per run: it draws the prior temperatures")),
    ModelSpec(name="ae", build=baselines.build_ae, datasets=_autoencoder_datasets, epochs=_autoencoder_epochs,
              loss=baselines.SummedSquaredError, metrics=lambda: [SSIM()], monitor="val_loss", mode="min",
              anomaly_score=baselines.ae_score, schema=_schema(baselines.build_ae),
              description="AE baseline after Heimel et al. (dark showers, CoDAE §5.2)", **_COMMON),
    ModelSpec(name="dirvae", build=baselines.build_dirvae, datasets=_autoencoder_datasets, epochs=_autoencoder_epochs,
              loss=baselines.MultinomialNLL, metrics=lambda: [], monitor="val_loss", mode="min",
              anomaly_score=baselines.dirvae_score, schema=_schema(baselines.build_dirvae),
              description="weakly supervised Dirichlet VAE of Dillon et al. (dark showers, CoDAE §5.2)",
              **_COMMON),
    ModelSpec(name="cct", build=baselines.build_cct, datasets=_classifier_datasets, epochs=_classifier_epochs,
              loss=lambda: keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
              metrics=lambda: [baselines.SignalAUC(), keras.metrics.CategoricalAccuracy(name="accuracy")],
              monitor="val_signal_auc", mode="max", anomaly_score=baselines.cct_score,
              schema=_schema(baselines.build_cct, data=_CLASSIFIER_DATA, pipe=_CLASSIFIER_PIPELINE),
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
