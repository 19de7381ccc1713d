"""CBAE — the constrained bottleneck autoencoder (Jesús-Valls, Lux & Sánchez 2022).

``waveforms`` (the toy detector of Eq. 1.2: Landau response, noise, the HDF5 layout and what
``tfphys-data cbae`` writes) → ``pipeline`` (``tf.data``) → ``model`` (the CBAE, Figure 1) →
``evaluate`` (§4: parameter estimation, generation, denoising). This module declares the
family's model for the registry (:data:`FAMILY`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfphys.cbae import commands, evaluate, model, pipeline, waveforms
from tfphys.config import Key
from tfphys.registry import Family, FileKind, ModelSpec


def _epochs(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.cbae_epochs(path, batch_size=int(pipe["batch_size"]), seed=seed,
                                val_fraction=float(data["val_fraction"]), max_waveforms=data["max_waveforms"])


def _datasets(cfg, path, seed):
    train, held_out = _epochs(cfg, path, seed)
    return train.reshuffled(seed), held_out


def _default_data(cfg):
    data = cfg["data"]
    return waveforms.default_dataset(int(data["default_n"]), int(data["default_seed"]))


def _representative(cfg, n, seed):
    data = cfg["data"]
    path = Path(data["path"]) if data["path"] else _default_data(cfg)
    parts = pipeline.split(waveforms.count(path), float(data["val_fraction"]), data["max_waveforms"])
    chosen = np.sort(np.random.default_rng(seed).permutation(parts.n_train)[:n])
    train = waveforms.read_waveforms(path, 0, int(chosen[-1]) + 1, clean=False)
    return train.waveforms[chosen]


# The keys, types and defaults of every section (tfphys.config; [model]: build_cbae's).
SCHEMA = {
    "data": {
        "val_fraction": Key(float, 0.2, "held-out fraction (validation and tfphys-eval's test set)"),
        "max_waveforms": Key(int | None, None, "use at most this many waveforms of the file (unset: all)"),
        "default_n": Key(int, 50_000, "without --data: toy waveforms generated (and cached)"),
        "default_seed": Key(int, 20220601, "without --data: the generator's seed"),
    },
    "pipeline": {
        "batch_size": Key(int, 32, "waveforms per batch"),
    },
}


SPEC = ModelSpec(
    name="cbae", family="cbae", build=model.build_cbae, datasets=_datasets, epochs=_epochs, default_data=_default_data,
    loss=model.ConstrainedBottleneckLoss, metrics=model.loss_terms, monitor="val_loss", mode="min",
    description="constrained bottleneck autoencoder (toy detector waveforms, Jesús-Valls et al.)",
    representative=_representative, evaluate=evaluate.evaluate, schema=SCHEMA,
)

FAMILY = Family(
    name="cbae",
    description="detector signals through a physical 2-d bottleneck (CBAE paper)",
    specs=(SPEC,),
    data_commands=commands.COMMANDS,
    file_kinds=(FileKind("cbae", waveforms.is_waveform_file, waveforms.summary),),
)
