"""Latency measurement: batch-1 timings of a LiteRT model and of the in-process Keras model.

Each call warms up, then times ``runs`` single invocations with ``time.perf_counter_ns`` and
returns the raw timings in milliseconds; :func:`summary` reduces them to the report's statistics.
With ``cpu=True`` it also returns the CPU time of each invocation: the process's
(``time.process_time_ns``: every thread, so a runtime's own thread pool counts) and the calling
thread's (``time.thread_time_ns``), as a :class:`Timing`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

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


class Timing(NamedTuple):
    """Per-invocation milliseconds: wall clock, process CPU (all threads), calling thread's CPU."""

    wall: np.ndarray
    cpu: np.ndarray
    thread_cpu: np.ndarray


def time_calls(call: Callable[[], object], *, runs: int = 200, warmup: int = 20, cpu: bool = False):
    """``call()`` ``warmup`` times, then ``runs`` timed calls: wall milliseconds per call, or with
    ``cpu`` a :class:`Timing` (wall, process CPU, thread CPU per call)."""
    for _ in range(warmup):
        call()
    wall, process, thread = np.empty(runs), np.empty(runs), np.empty(runs)
    for i in range(runs):
        p0, t0, start = time.process_time_ns(), time.thread_time_ns(), time.perf_counter_ns()
        call()
        end, t1, p1 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
        wall[i], process[i], thread[i] = (end - start) / 1e6, (p1 - p0) / 1e6, (t1 - t0) / 1e6
    return Timing(wall, process, thread) if cpu else wall


def time_tflite(interp, inputs: Sequence[np.ndarray], *, runs: int = 200, warmup: int = 20, cpu: bool = False):
    """Milliseconds per ``invoke()`` (inputs set once: the HLT path reuses its buffers); see :func:`time_calls`."""
    set_inputs(interp, inputs)
    return time_calls(interp.invoke, runs=runs, warmup=warmup, cpu=cpu)


def time_keras(model, inputs: Sequence[np.ndarray], *, runs: int = 200, warmup: int = 20, cpu: bool = False):
    """Milliseconds per call of ``model`` compiled with ``tf.function`` (result fetched each time)."""
    import tensorflow as tf

    args = [tf.constant(x) for x in inputs]
    fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False))
    _fetch(fn(*args))
    return time_calls(lambda: _fetch(fn(*args)), runs=runs, warmup=max(warmup - 1, 0), cpu=cpu)


def _fetch(outputs):
    for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        out.numpy()


def describe(interp) -> dict:
    """Input and output tensors (name, shape, dtype) of a LiteRT interpreter, and the layout (NHWC:
    the Keras layout, which the converter keeps), for the report."""
    def io(details):
        return [{"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
                for d in details]

    details = interp.get_output_details()
    by_index = {d["index"]: d for d in details}
    return {"inputs": io(interp.get_input_details()), "outputs": io([by_index[i] for i in output_indices(interp)]),
            "layout": "NHWC"}
