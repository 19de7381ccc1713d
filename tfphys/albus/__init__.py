"""ALBUS — a U-Net for minute-long gravitational-wave bursts (Boudart & Fays, arXiv 2201.08727).

``noise`` (H1/L1-like coloured noise, glitches, time slides) → ``coherence`` (166 × 1025 Welch
coherence maps) → ``injections`` (chirps set by visibility, target maps) → ``storage`` (cubehelix
RGB in HDF5, the multiprocess builder behind ``tfphys-data albus``, the cached default set) →
``pipeline`` (``tf.data``) → ``model`` (the U-Net) → ``evaluate`` (detection statistics,
efficiency curves, the paper's figures). This module declares the family for the registry.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from tfphys.albus import commands, evaluate, model, pipeline, storage
from tfphys.registry import Family, FileKind, ModelSpec, Scorer


def _default_data(cfg):
    data = cfg["data"]
    return storage.default_dataset(int(data.get("default_background", 36)), int(data.get("default_per_level", 4)),
                                   int(data.get("default_seed", 20220121)), psd=data.get("psd", "auto"))


def _datasets(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.albus_datasets(path, batch_size=int(pipe.get("batch_size", 20)), seed=seed,
                                   val_fraction=float(data.get("val_fraction", 0.1)),
                                   max_maps=data.get("max_maps"), cache=bool(pipe.get("cache", True)),
                                   target=str(pipe.get("target", "max")))


def _representative(cfg, n, seed):
    data = cfg.get("data", {})
    return evaluate.representative(Path(data["path"]) if data.get("path") else _default_data(cfg), n, seed,
                                   val_fraction=float(data.get("val_fraction", 0.1)))


def _labelled_sample(cfg, path, n_per_class, seed):
    return evaluate.labelled_sample(path or evaluate.default_eval_data(cfg), n_per_class, seed)


def _n_events(path):
    with storage.open_albus(path) as f:
        return int(f["kind"].shape[0])


def _score(net, spec, path, start, stop, seed):
    maps, _ = pipeline.read_maps(path, np.arange(start, stop))
    outputs = evaluate.predict(net, maps)
    return {name: np.asarray(fn(outputs), np.float64) for name, fn in evaluate.STATISTICS.items()}


SPEC = ModelSpec(
    name="albus", family="albus", build=model.build_albus, datasets=_datasets, default_data=_default_data,
    loss=keras.losses.MeanSquaredError, metrics=lambda: [], monitor="val_loss", mode="min",
    description="pixel-wise U-Net on H1-L1 coherence maps (GW long-duration bursts, ALBUS)",
    representative=_representative, labelled_sample=_labelled_sample, anomaly_score=evaluate.map_sum,
    evaluate=evaluate.evaluate,
    scorer=Scorer(file_kind="albus", chunk=32, n_events=_n_events, columns=("kind", "visibility"), score=_score),
)

FAMILY = Family(
    name="albus",
    description="long-duration gravitational-wave bursts in H1-L1 coherence maps (ALBUS paper)",
    specs=(SPEC,),
    data_commands=commands.COMMANDS,
    file_kinds=(FileKind("albus", storage.is_albus_file, storage.summary),),
)
