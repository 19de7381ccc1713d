"""Latency measurement: batch-1 timings of a LiteRT model and of the in-process Keras model.

Each call warms up, then times ``runs`` single invocations with ``time.perf_counter_ns`` and
returns the raw timings in milliseconds; :func:`summary` reduces them to the report's statistics.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import numpy as np

STATISTICS = ("p50", "p90", "p99", "mean", "max")


def summary(times_ms: Sequence[float]) -> dict[str, float]:
    """``p50``, ``p90``, ``p99`` (NumPy's linear-interpolation percentiles), ``mean`` and ``max``.

    Refuses fewer than 2 timings: a percentile of one number is not a measurement.
    """
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2 or not np.all(np.isfinite(t)):
        raise ValueError(f"need ≥ 2 finite timings, got {t.shape} {t[:5]}")
    p50, p90, p99 = np.percentile(t, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99),
            "mean": float(t.mean()), "max": float(t.max())}


def interpreter(content: bytes, threads: int = 1):
    """A LiteRT interpreter with tensors allocated (``ai_edge_litert``, the deployment runtime)."""
    from ai_edge_litert.interpreter import Interpreter

    from tfphys.console import quiet

    with quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interp = Interpreter(model_content=content, num_threads=threads)
        interp.allocate_tensors()
    return interp


def keras_input_order(interp, names: Sequence[str], shapes: Sequence[Sequence[int]]) -> list[int]:
    """For each interpreter input, the index of the Keras input it is: by name (the converter
    names them ``serving_default_NAME:0``), else by per-event shape."""
    order, unused = [], list(range(len(names)))
    for detail in interp.get_input_details():
        name = detail["name"].removeprefix("serving_default_").rsplit(":", 1)[0]
        match = next((i for i in unused if names[i] == name), None)
        if match is None:
            match = next((i for i in unused if tuple(shapes[i]) == tuple(detail["shape"][1:])), None)
        if match is None:
            raise ValueError(f"no Keras input matches TFLite input {detail['name']} {tuple(detail['shape'])}")
        unused.remove(match)
        order.append(match)
    return order


def set_inputs(interp, inputs: Sequence[np.ndarray]) -> None:
    """Set ``inputs`` (in the Keras model's order) on the interpreter.

    The converter may order a multi-input model's tensors differently from Keras, so each
    interpreter input takes the first unused array with its per-event shape.
    """
    unused = list(range(len(inputs)))
    for detail in interp.get_input_details():
        match = next((i for i in unused if tuple(np.shape(inputs[i])[1:]) == tuple(detail["shape"][1:])), None)
        if match is None:
            raise ValueError(f"no input of shape {tuple(detail['shape'])} among {[np.shape(x) for x in inputs]}")
        unused.remove(match)
        interp.set_tensor(detail["index"], np.asarray(inputs[match], dtype=detail["dtype"]))


def output_indices(interp) -> list[int]:
    """The tensor index of each interpreter output, in the Keras model's output order.

    LiteRT lists a multi-output model's outputs in its own order (often reversed); the converter
    names output ``k`` of the Keras model ``<call>:k`` (e.g. ``StatefulPartitionedCall_1:0``), which
    gives the Keras order back. Without such names, the interpreter's order is kept.
    """
    details = interp.get_output_details()
    found = [_KERAS_OUTPUT.fullmatch(d["name"]) for d in details]
    if all(found) and len({m.group(1) for m in found}) == 1:
        ks = [int(m.group(2)) for m in found]
        if sorted(ks) == list(range(len(ks))):
            return [d["index"] for _, d in sorted(zip(ks, details), key=lambda kd: kd[0])]
    return [d["index"] for d in details]


_KERAS_OUTPUT = re.compile(r"(.+):(\d+)")


def run_tflite(interp, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One invocation with ``inputs`` in the Keras model's order; the outputs as arrays, in the
    Keras model's order too (:func:`output_indices`)."""
    set_inputs(interp, inputs)
    interp.invoke()
    return [interp.get_tensor(i) for i in output_indices(interp)]


def time_tflite(interp, inputs: Sequence[np.ndarray], *, runs: int = 200, warmup: int = 20) -> np.ndarray:
    """Milliseconds per ``invoke()`` (inputs set once: the HLT path reuses its buffers)."""
    set_inputs(interp, inputs)
    for _ in range(warmup):
        interp.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        interp.invoke()
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def time_keras(model, inputs: Sequence[np.ndarray], *, runs: int = 200, warmup: int = 20) -> np.ndarray:
    """Milliseconds per call of ``model`` compiled with ``tf.function`` (result fetched each time)."""
    import tensorflow as tf

    args = [tf.constant(x) for x in inputs]
    fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False))
    for _ in range(max(warmup, 1)):
        _fetch(fn(*args))
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        _fetch(fn(*args))
        times[i] = (time.perf_counter_ns() - start) / 1e6
    return times


def _fetch(outputs):
    for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        out.numpy()
