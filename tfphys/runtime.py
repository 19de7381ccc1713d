"""Scoring through the exported runtime: ``tfphys-score shard RUN … --runtime litert``.

``tfphys-export RUN`` writes the deployed files into the run dir: ``model_<precision>.tflite``
and, for models with nested Keras models (CoDAE: ``f_R``, ``f_m``, ``decoder``),
``<name>_<precision>.tflite`` for each, always at float32 beside the chosen precision
(:mod:`export.exporter`). :func:`open_exported` wraps them in :class:`LiteRTModel`, which runs a file
with the LiteRT interpreter (``ai_edge_litert``, the deployment runtime) on one thread, one event per
``invoke()`` (the files have a fixed batch of 1, as deployed), and offers the part of Keras's model
API that the families' scorers use: ``name``, ``predict(x, batch_size=…, verbose=…)`` and
``layers`` (the exported sub-models, each a :class:`LiteRTModel`). So the scorer computes the same
scores from the same code; only the forward passes run elsewhere.

One interpreter per process: shards (``--shard i/N``) are the way to use more cores.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from tfphys.errors import TfphysError

RUNTIMES = ("keras", "litert")
#: the exported precisions ``--runtime litert`` reads (float32 is written by every TFLite export)
PRECISIONS = ("float32", "float16")
_KERAS_OUTPUT = re.compile(r"(.+):(\d+)")


class LiteRTModel:
    """One exported ``.tflite`` file run by a single-thread LiteRT interpreter (created on first use),
    with Keras's ``name``, ``predict`` and ``layers`` (the exported sub-models)."""

    def __init__(self, path, name: str = "model", layers=(), threads: int = 1, precision: str = "float32"):
        self.path, self.name, self.layers, self.threads = Path(path), name, list(layers), threads
        self._precision = precision
        self._interp = None

    def __repr__(self) -> str:
        return f"LiteRTModel({str(self.path)!r})"

    def _interpreter(self):
        if self._interp is None:
            import os

            if not self.path.is_file():  # a sub-model of a run exported with --no-submodels
                raise TfphysError(f"{self.path.parent} has no exported {self.path.name} (exported with "
                                  f"--no-submodels?): run `{export_command(self.path.parent, self._precision)}`")

            from ai_edge_litert.interpreter import Interpreter

            from tfphys.console import quiet

            with quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                interp = Interpreter(model_path=os.fspath(self.path), num_threads=self.threads)
                interp.allocate_tensors()
            inputs = interp.get_input_details()
            if len(inputs) != 1:
                raise TfphysError(f"{self.path} has {len(inputs)} inputs; scoring runs single-input models")
            self._input = inputs[0]
            self._outputs = _keras_order(interp.get_output_details())
            self._interp = interp
        return self._interp

    def predict(self, x, batch_size=None, verbose=0):
        """The outputs for every event of ``x`` (one ``invoke()`` each): an array, or a list of
        arrays for a multi-output model, in the Keras model's output order. ``batch_size`` and
        ``verbose`` are accepted for Keras's signature and ignored."""
        interp = self._interpreter()
        x = np.asarray(x, dtype=self._input["dtype"])
        shape = tuple(self._input["shape"][1:])
        if x.shape[1:] != shape:
            raise TfphysError(f"{self.path} takes events of shape {shape}, got {x.shape[1:]}")
        outs = [np.empty((len(x), *d["shape"][1:]), d["dtype"]) for d in self._outputs]
        index, set_tensor, invoke = self._input["index"], interp.set_tensor, interp.invoke
        getters = [(o, d["index"]) for o, d in zip(outs, self._outputs)]
        for i in range(len(x)):
            set_tensor(index, x[i:i + 1])
            invoke()
            for o, k in getters:
                o[i] = interp.get_tensor(k)[0]
        return outs[0] if len(outs) == 1 else outs


def _keras_order(details: list[dict]) -> list[dict]:
    """Output details in the Keras model's order: the converter names output k ``<call>:k``."""
    found = [_KERAS_OUTPUT.fullmatch(d["name"]) for d in details]
    if all(found) and len({m.group(1) for m in found}) == 1:
        ks = [int(m.group(2)) for m in found]
        if sorted(ks) == list(range(len(ks))):
            return [d for _, d in sorted(zip(ks, details), key=lambda kd: kd[0])]
    return list(details)


def export_command(run, precision: str) -> str:
    return f"tfphys-export {run}" + (" --float32" if precision == "float32" else "")


def nested_models(model_file) -> list[str]:
    """The names of the nested Keras models of a saved functional model (what ``tfphys-export``
    exports as sub-models), read from the ``.keras`` archive's ``config.json`` without loading it."""
    try:
        with zipfile.ZipFile(model_file) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise TfphysError(f"{model_file} is not a Keras model file ({err})") from None
    return [layer["config"]["name"] for layer in config.get("config", {}).get("layers", [])
            if layer.get("class_name") in ("Functional", "Sequential")]


def open_exported(run, precision: str = "float32", threads: int = 1) -> LiteRTModel:
    """The exported model of run dir ``run`` at ``precision`` with its exported sub-models; one
    TfphysError line naming the command to run when the run was not exported (at this precision), or
    was exported before ``model.keras`` last changed, or (when the scorer first runs it) a sub-model
    file is missing (``--no-submodels``)."""
    run = Path(run)
    if precision not in PRECISIONS:
        raise TfphysError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    again = f"run `{export_command(run, precision)}`"
    model_file, main = run / "model.keras", run / f"model_{precision}.tflite"
    if not main.is_file():
        raise TfphysError(f"{run} has no exported {main.name} (--runtime litert scores with the files of "
                          f"tfphys-export): {again} first, or score with --runtime keras")
    # every nested model, each file opened when the scorer first runs it (CoDAE: f_m for Z_m)
    layers = [LiteRTModel(run / f"{name}_{precision}.tflite", name, threads=threads, precision=precision)
              for name in nested_models(model_file)]
    files = [main, *(layer.path for layer in layers if layer.path.is_file())]
    stale = [p.name for p in files if p.stat().st_mtime < model_file.stat().st_mtime]
    if stale:
        raise TfphysError(f"{run}: {stale[0]} is older than model.keras (exported before the model last "
                          f"changed): {again}")
    return LiteRTModel(main, "model", layers, threads=threads)
