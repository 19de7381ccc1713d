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
from tfphys.config import Key
from tfphys.registry import Family, FileKind, ModelSpec, Scorer


def _default_data(cfg):
    data = cfg["data"]
    return storage.default_dataset(int(data["default_background"]), int(data["default_per_level"]),
                                   int(data["default_seed"]), psd=data["psd"])


def _datasets(cfg, path, seed):
    train, val = _epochs(cfg, path, seed)
    return train.reshuffled(seed), val


def _epochs(cfg, path, seed):
    data, pipe = cfg["data"], cfg["pipeline"]
    return pipeline.albus_epochs(path, batch_size=int(pipe["batch_size"]), seed=seed,
                                 val_fraction=float(data["val_fraction"]),
                                 max_maps=data["max_maps"], cache=bool(pipe["cache"]),
                                 target=str(pipe["target"]))


def _representative(cfg, n, seed):
    data = cfg["data"]
    return evaluate.representative(Path(data["path"]) if data["path"] else _default_data(cfg), n, seed,
                                   val_fraction=float(data["val_fraction"]))


def _labelled_sample(cfg, path, n_per_class, seed):
    return evaluate.labelled_sample(path or evaluate.default_eval_data(cfg), n_per_class, seed)


def _n_events(path):
    with storage.open_albus(path) as f:
        return int(f["kind"].shape[0])


def _score(net, spec, path, start, stop, seed):
    maps, _ = pipeline.read_maps(path, np.arange(start, stop))
    outputs = evaluate.predict(net, maps)
    return {name: np.asarray(fn(outputs), np.float64) for name, fn in evaluate.STATISTICS.items()}


# The keys, types and defaults of every section (tfphys.config; [model]: build_albus's).
SCHEMA = {
    "data": {
        "val_fraction": Key(float, 0.1, "validation fraction of both background and injections"),
        "max_maps": Key(int | None, None, "use at most this many maps of the file (unset: all)"),
        "default_background": Key(int, 36, "without --data: time-slide background maps built (and cached)"),
        "default_per_level": Key(int, 4, "without --data: chirps built at each visibility level"),
        "default_seed": Key(int, 20220121, "without --data: the builder's seed (tfphys-eval's set: seed + 1)"),
        "psd": Key(str, "auto", "noise PSD: O3 (lalsuite), analytic (aLIGO fit) or auto"),
        "eval_background": Key(int, 40, "tfphys-eval without --data: background maps of its cached set"),
        "eval_per_level": Key(int, 4, "tfphys-eval without --data: chirps per visibility level"),
        "eval_glitch": Key(int, 2, "tfphys-eval without --data: glitch maps (Figure 11)"),
    },
    "pipeline": {
        "batch_size": Key(int, 20, "maps per batch, half background, half chirps"),
        "cache": Key(bool, True, "keep the uint8 maps in memory"),
        "target": Key(str, "max", "max: each target map / its peak (§II.B); raw: the stored D"),
    },
}

SPEC = ModelSpec(
    name="albus", family="albus", build=model.build_albus, datasets=_datasets, epochs=_epochs,
    default_data=_default_data,
    loss=keras.losses.MeanSquaredError, metrics=lambda: [], monitor="val_loss", mode="min",
    description="pixel-wise U-Net on H1-L1 coherence maps (GW long-duration bursts, ALBUS)",
    representative=_representative, labelled_sample=_labelled_sample, anomaly_score=evaluate.map_sum,
    evaluate=evaluate.evaluate, schema=SCHEMA,
    scorer=Scorer(file_kind="albus", chunk=32, n_events=_n_events, columns=("kind", "visibility"), score=_score),
)

FAMILY = Family(
    name="albus",
    description="long-duration gravitational-wave bursts in H1-L1 coherence maps (ALBUS paper)",
    specs=(SPEC,),
    data_commands=commands.COMMANDS,
    file_kinds=(FileKind("albus", storage.is_albus_file, storage.summary),),
)
