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
from tfphys.registry import Family, FileKind, ModelSpec


def _datasets(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.cbae_datasets(path, batch_size=int(pipe.get("batch_size", 32)), seed=seed,
                                  val_fraction=float(data.get("val_fraction", 0.2)),
                                  max_waveforms=data.get("max_waveforms"))


def _default_data(cfg):
    data = cfg["data"]
    return waveforms.default_dataset(int(data.get("default_n", 50_000)), int(data.get("default_seed", 20220601)))


def _representative(cfg, n, seed):
    data = cfg.get("data", {})
    path = Path(data["path"]) if data.get("path") else _default_data(cfg)
    parts = pipeline.split(waveforms.count(path), float(data.get("val_fraction", 0.2)), data.get("max_waveforms"))
    chosen = np.sort(np.random.default_rng(seed).permutation(parts.n_train)[:n])
    train = waveforms.read_waveforms(path, 0, int(chosen[-1]) + 1, clean=False)
    return train.waveforms[chosen]


SPEC = ModelSpec(
    name="cbae", family="cbae", build=model.build_cbae, datasets=_datasets, default_data=_default_data,
    loss=model.ConstrainedBottleneckLoss, metrics=model.loss_terms, monitor="val_loss", mode="min",
    description="constrained bottleneck autoencoder (toy detector waveforms, Jesús-Valls et al.)",
    representative=_representative, evaluate=evaluate.evaluate,
)

FAMILY = Family(
    name="cbae",
    description="detector signals through a physical 2-d bottleneck (CBAE paper)",
    specs=(SPEC,),
    data_commands=commands.COMMANDS,
    file_kinds=(FileKind("cbae", waveforms.is_waveform_file, waveforms.summary),),
)
