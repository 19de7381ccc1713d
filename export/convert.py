"""Keras → TFLite conversion with builtin ops only, at float32, float16 or int8.

TF ≥ 2.20 ships no Flex delegate, so a model that needs any non-builtin op cannot be deployed:
:func:`convert` then fails with an :class:`ExportError` naming the op(s) and the layer(s).

* ``float32`` — the reference: same arithmetic as Keras.
* ``float16`` — weights stored as float16 (paper §4.7); XNNPACK still computes in float32, so the
  file halves but the speed does not change.
* ``int8`` — post-training full-integer quantisation: weights and activations int8, calibrated on a
  representative sample of the training data; float input and output tensors. The ops that
  produce the outputs may be kept float (``keep_float``; the exporter keeps them): an int8 sigmoid
  output has a fixed step of 1/256, so every probability below 0.004 becomes 0 and the BCE
  anomaly score, which lives on ``log p`` of the hit pixels, loses its tail (measured on a trained
  CoDAE, 500 events: ΔAUROC +0.0034 with the int8 sigmoid, +0.0016 with it float, no slower).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfphys.console import quiet
from tfphys.errors import TfphysError
from tfphys.layers import GroupedConv2D

PRECISIONS = ("float32", "float16", "int8")


class ExportError(TfphysError):
    """The model cannot be exported or its export is not trustworthy."""


def grouped_conv_as_conv2d(layer):
    """``GroupedConv2D`` → ``keras.layers.Conv2D(groups=g)`` with the same weights, else None.

    The two compute the same function with the same kernel layout ``(kh, kw, C_in/g, filters)``.
    ``GroupedConv2D`` exists for training speed (TF's CPU gradient of a grouped conv is slow); at
    inference LiteRT runs one grouped CONV_2D faster than ``g`` SPLIT/CONV_2D/CONCATENATION
    branches (``tools/bench_export.py --compare-rewrite`` times both side by side).
    """
    if not isinstance(layer, GroupedConv2D):
        return None
    new = keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                              padding=layer.padding, groups=layer.groups, name=layer.name)
    new.build((None, None, None, layer.kernel.shape[2] * layer.groups))
    new.set_weights(layer.get_weights())
    return new


def rewrite(model: keras.Model, replace: Callable[[keras.layers.Layer], keras.layers.Layer | None],
            batch: int = 1) -> keras.Model:
    """A clone of a functional ``model`` (nested functional sub-models too) with the layers for
    which ``replace`` returns a new layer replaced; the others are shared (same weights).

    The clone's inputs get the fixed batch size ``batch``, so that every shape in the exported
    graph is static.
    """

    def clone_fn(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone_fn)
        return replace(layer) or layer

    clone = keras.models.clone_model(model, clone_function=clone_fn)
    inputs = [keras.Input(batch_shape=(batch, *t.shape[1:]), name=t.name, dtype=t.dtype)
              for t in clone.inputs]
    single = inputs[0] if len(inputs) == 1 else inputs
    return keras.Model(single, clone(single), name=model.name)


def _layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def for_deployment(model: keras.Model) -> keras.Model:
    """The graph to convert: ``model`` with its ``GroupedConv2D`` layers as ``Conv2D(groups)``
    (:func:`grouped_conv_as_conv2d`) when it has any, else ``model`` itself. The outputs are the
    same function of the inputs; :mod:`export.exporter` checks it on real events.
    """
    if not any(isinstance(layer, GroupedConv2D) for layer in _layers(model)):
        return model
    if not isinstance(model, keras.Function):
        return model  # subclassed, so not clonable: its split/conv/concat graph exports as it is
    return rewrite(model, grouped_conv_as_conv2d)


def convert(model: keras.Model, precision: str, representative: Sequence[Sequence[np.ndarray]] | None = None,
            input_order: Sequence[int] | None = None, keep_float: Sequence[str] = ()) -> bytes:
    """The TFLite flatbuffer of ``model`` at ``precision``, builtin ops only.

    ``representative``: for int8, a sequence of input lists (one list per model input, in the
    Keras model's order, batch 1) drawn from the training data. ``input_order``: the Keras input
    index of each TFLite input (:func:`export.latency.keras_input_order`) — the converter orders a
    multi-input model's inputs by its own rule (the CoDAE decoder gets ``z_m`` before ``z``), and
    calibration data must follow it. ``keep_float``: for int8, names of tensors whose producing
    ops stay float (:func:`output_names` of the float32 export: the output activations), through
    ``tf.lite.experimental.QuantizationDebugger``'s deny-list.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        if not representative:
            raise ExportError("int8 quantisation needs a representative sample of the training data")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        order = list(input_order) if input_order is not None else list(range(len(representative[0])))
        converter.representative_dataset = lambda: ([np.asarray(inputs[i], np.float32) for i in order]
                                                    for inputs in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if keep_float:
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    with quiet():  # the converter prints its SavedModel and MLIR chatter on fds 1 and 2
        try:
            if precision == "int8" and keep_float:
                options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(keep_float))
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=converter.representative_dataset,
                    debug_options=options)
                return debugger.get_nondebug_quantized_model()
            return converter.convert()
        except Exception as err:  # ConverterError / RuntimeError carrying the MLIR diagnostics
            message = str(err)
    raise ExportError(_explain(model, precision, message))


_OP = re.compile(r"'(tf\.\w+)' op is neither a custom op nor a flex op")
_LOCATION = re.compile(r'"([\w/.\-]+?)@')


def _layer_names(model) -> set[str]:
    names = set()
    for layer in model.layers:
        names.add(layer.name)
        if isinstance(layer, keras.Model):
            names |= _layer_names(layer)
    return names


def _explain(model: keras.Model, precision: str, message: str) -> str:
    """Turn the converter's MLIR diagnostics into: which op, in which layer."""
    name = model.name
    ops = sorted(set(_OP.findall(message)))
    if ops:
        known = _layer_names(model)
        # Locations read like ".../my_layer_1/Erfinv@__inference_...": keep the parts that are
        # layer names (tracing may append "_<n>" to a layer's name scope).
        layers = sorted({part if part in known else re.sub(r"_\d+$", "", part)
                         for loc in _LOCATION.findall(message) for part in loc.split("/")
                         if part in known or re.sub(r"_\d+$", "", part) in known})
        where = f" in layer(s) {', '.join(layers)}" if layers else ""
        return (f"{name} cannot be exported at {precision} with builtin TFLite ops only: it needs "
                f"{', '.join(ops)}{where} (TF ≥ 2.20 has no Flex delegate; export the deterministic "
                f"inference path)")
    first = next((line.strip() for line in message.splitlines() if "error" in line.lower()), message[:300])
    return f"{name} could not be converted at {precision}: {first}"


def output_names(content: bytes) -> list[str]:
    """Names of a flatbuffer's output tensors (e.g. ``StatefulPartitionedCall_1:0``)."""
    from export.latency import interpreter

    return [d["name"] for d in interpreter(content).get_output_details()]


def ops_used(content: bytes) -> list[str]:
    """Names of the operators in a flatbuffer (e.g. ``CONV_2D``), sorted, for checks and reports."""
    from export.latency import interpreter

    interp = interpreter(content)
    return sorted({op["op_name"] for op in interp._get_ops_details()})


def submodels(model: keras.Model) -> dict[str, keras.Model]:
    """The nested Keras models a trigger may run alone (CoDAE: ``f_R``, ``f_m``, ``decoder``)."""
    return {layer.name: layer for layer in model.layers if isinstance(layer, keras.Model)}


def submodel_inputs(model: keras.Model, name: str, x: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The real inputs that sub-model ``name`` receives inside ``model`` when fed ``x``."""
    sub = model.get_layer(name)
    tensors = sub._inbound_nodes[0].input_tensors
    probe = keras.Model(model.inputs, list(tensors))
    out = probe.predict(list(x) if len(x) > 1 else x[0], verbose=0)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def flops(model: keras.Model) -> int:
    """Floating-point operations of one batch-1 forward pass (TF profiler on the frozen graph)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = [tf.TensorSpec([1, *t.shape[1:]], t.dtype) for t in model.inputs]
    fn = tf.function(lambda *a: model(list(a) if len(a) > 1 else a[0], training=False))
    with quiet():
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function(*specs))
        builder = tf.compat.v1.profiler.ProfileOptionBuilder
        options = builder(builder.float_operation()).with_empty_output().build()
        return int(tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops)
