"""Keras → ONNX (float32, dynamic batch, opset :data:`OPSET`) and ONNX Runtime as CMSSW runs it.

CMSSW's HLT has no TFLite runtime; its ML inference goes through ONNX Runtime
(``PhysicsTools/ONNXRuntime``, whose ``ONNXService`` sets one intra-op and one inter-op thread and
sequential execution). :func:`convert` traces the Keras model with ``tf.function`` and converts it
with ``tf2onnx.convert.from_function`` (what Keras 3's ``model.export(format="onnx")`` runs), after
two export-time changes to the graph, both checked against Keras on real events by
:mod:`export.exporter`:

* grouped convolutions (the training-time ``GroupedConv2D``: split / g convs / concat; and
  ``Conv2D(groups>1)``, which Keras wraps in an XLA ``tf.function`` that tf2onnx cannot convert)
  are traced as one ``tf.nn.conv2d`` with a grouped kernel, which tf2onnx maps to one ONNX
  ``Conv`` with ``group = g``;
* the instance norms, which tf2onnx spells as ten elementwise/pooling nodes, are fused into one
  ONNX ``InstanceNormalization`` node (:func:`fuse_instance_norms`).

The NHWC → NCHW transposes are tf2onnx's: its transpose optimiser leaves one at the input and one
at each output, so the file keeps the Keras layout (NHWC in, NHWC out) — a CMSSW producer fills
the input as a flat NHWC array. ONNX Runtime's own graph optimisations (``ORT_ENABLE_ALL``, its
default and CMSSW's, with its blocked NCHWc convolution layout) run when the session is created;
the file stays portable (no hardware-specific ops saved).
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from export.convert import ExportError, _layer_names, rewrite
from tfphys.console import quiet
from tfphys.layers import GroupedConv2D

#: The ONNX opset of every export: supported by tf2onnx 1.17 and every ONNX Runtime ≥ 1.13
#: (CMSSW 14–15 ship ORT 1.16–1.20), and new enough for every op the tfphys models need.
OPSET = 17
#: What CMSSW's ``ONNXService`` sets (``PhysicsTools/ONNXRuntime``): one thread, sequential.
SESSION_OPTIONS = {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL"}
#: ONNX Runtime's default graph optimisation level (CMSSW keeps it).
GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"
BATCH = "batch"


class _OneGroupedConv(keras.layers.Layer):
    """Export-only stand-in for a grouped convolution: one ``tf.nn.conv2d`` with the grouped kernel
    ``(kh, kw, C_in/g, filters)`` (tf2onnx: one ``Conv`` with ``group``), same weights, same name."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, **kwargs)
        self.source = source

    def compute_output_shape(self, input_shape):
        return self.source.compute_output_shape(input_shape)

    def call(self, x):
        s = self.source
        y = tf.nn.conv2d(x, s.kernel, strides=[1, *s.strides, 1], padding=s.padding.upper())
        if getattr(s, "bias", None) is not None:
            y = tf.nn.bias_add(y, s.bias)
        activation = getattr(s, "activation", None)
        return activation(y) if activation is not None else y


def _is_grouped(layer) -> bool:
    if isinstance(layer, GroupedConv2D):
        return True
    return (type(layer) is keras.layers.Conv2D and layer.groups > 1 and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1))


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)


def for_onnx(model: keras.Model) -> keras.Model:
    """The graph to convert: a clone of ``model`` with a dynamic batch dimension and its grouped
    convolutions as :class:`_OneGroupedConv` (same weights), or ``model`` itself when it has none
    or is not functional (then it is traced as it is)."""
    if not isinstance(model, keras.Function) or not any(_is_grouped(layer) for layer in _layers(model)):
        return model
    return rewrite(model, lambda layer: _OneGroupedConv(layer) if _is_grouped(layer) else None, batch=None)


def _output_names(model: keras.Model, n: int) -> list[str]:
    names = [re.sub(r"[^\w.\-]", "_", str(name)) for name in (getattr(model, "output_names", None) or [])]
    if len(names) != n or len(set(names)) != n:
        names = ["output"] if n == 1 else [f"output_{k}" for k in range(n)]
    return names


@contextlib.contextmanager
def _tf2onnx_quietly():
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), quiet():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def convert(model: keras.Model, opset: int = OPSET, *, group_convs: bool = True, fuse_norms: bool = True):
    """The float32 ONNX ``ModelProto`` of ``model``: inputs named as the Keras inputs, outputs as
    the Keras outputs, batch dimension ``"batch"`` (dynamic), grouped convolutions as one ``Conv``
    each and instance norms fused. A model that cannot be converted is one :class:`ExportError`
    naming the op(s) and the layer(s). ``group_convs`` / ``fuse_norms`` False: without either
    export-time change (``tools/bench_export.py --onnx`` times each step)."""
    import onnx
    import tf2onnx

    try:  # Keras' numpy-2 patch of tf2onnx 1.17 (what model.export(format="onnx") applies)
        from keras.src.export.tf2onnx_lib import patch_tf2onnx
    except ImportError:  # pragma: no cover - a Keras without it
        patch_tf2onnx = None

    deploy = for_onnx(model) if group_convs else model
    specs = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
    fn = tf.function(lambda *a: deploy(list(a) if len(a) > 1 else a[0], training=False), input_signature=specs)
    with _tf2onnx_quietly():
        try:
            if patch_tf2onnx is not None:
                patch_tf2onnx()
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset,
                                                     custom_op_handlers=_HANDLERS)
        except Exception as err:  # tf2onnx raises anything from ValueError to KeyError
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ExportError(f"{model.name} could not be converted to ONNX (opset {opset}): "
                              f"{type(err).__name__}: {first}") from None
    unsupported = [node for node in proto.graph.node if not onnx.defs.has(node.op_type, node.domain)]
    if unsupported:
        raise ExportError(_explain(model, opset, unsupported))
    if fuse_norms:
        fuse_instance_norms(proto)
    _name_io(proto, model)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportError(f"{model.name}: the ONNX export is not a valid model: {first}") from None
    return proto


def _erfc(ctx, node, name, args):
    """TF's ``Erfc`` (exact GELU in TF ≥ 2.16: ``0.5·x·erfc(−x/√2)``), which tf2onnx 1.17 lacks,
    as ``1 − Erf(x)``."""
    from tf2onnx import utils

    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1.0, np.float32))
    sub = ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(f"{node.name}_erfc"))
    ctx.replace_inputs(sub, [one.output[0], node.output[0]])
    return node


_HANDLERS = {"Erfc": (_erfc, [])}


def _explain(model, opset, nodes) -> str:
    """Which TF op(s) tf2onnx could not convert, in which layer(s) (from the nodes' name scopes)."""
    known = _layer_names(model)
    ops = sorted({node.op_type for node in nodes})
    layers = sorted({part if part in known else re.sub(r"_\d+$", "", part)
                     for node in nodes for part in node.name.split("/")
                     if part in known or re.sub(r"_\d+$", "", part) in known} - {model.name})
    where = f" in layer(s) {', '.join(layers)}" if layers else ""
    return (f"{model.name} cannot be exported to ONNX (opset {opset}): tf2onnx has no conversion for "
            f"{', '.join(ops)}{where}")


def _name_io(proto, model) -> None:
    """Outputs renamed to the Keras output names; the batch dimension of every input and output
    named ``"batch"`` (tf2onnx leaves ``unk__N``)."""
    rename = dict(zip((o.name for o in proto.graph.output), _output_names(model, len(proto.graph.output))))
    for node in proto.graph.node:
        for k, name in enumerate(node.output):
            if name in rename:
                node.output[k] = rename[name]
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
    for value in proto.graph.output:
        value.name = rename[value.name]
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH


def fuse_instance_norms(proto) -> int:
    """Replace each instance norm as tf2onnx spells it — ``m = GAP(x); d = x − m; v = GAP(d·d);
    r = 1/√(v + ε); y = d·(r·γ) + β``, with an optional Reshape after the first GAP — by one
    ``InstanceNormalization(x, γ, β, ε)`` node (same maths: population variance, ε inside the
    root). Returns the number fused. Anything that does not match exactly is left as it is."""
    from onnx import helper, numpy_helper

    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    for node in g.node:
        for name in dict.fromkeys(node.input):  # a node reading a tensor twice (d·d) is one consumer
            consumers.setdefault(name, []).append(node)

    def const(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def only(name, op):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    graph_outputs = {o.name for o in g.output}
    producers = {out: node for node in g.node for out in node.output}
    removed, added, shapes = set(), [], {}
    def spatial_mean(node) -> bool:  # GlobalAveragePool, or ReduceMean over (H, W) of NCHW, dims kept
        if node is None:
            return False
        if node.op_type == "GlobalAveragePool":
            return True
        attrs = {a.name: a for a in node.attribute}
        return (node.op_type == "ReduceMean" and len(node.input) == 1 and "axes" in attrs
                and sorted(attrs["axes"].ints) in ([2, 3], [-2, -1])
                and (attrs["keepdims"].i if "keepdims" in attrs else 1) == 1)

    def only_mean(name):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and spatial_mean(users[0]) else None

    for mean in [n for n in g.node if spatial_mean(n)]:
        x = mean.input[0]
        m_out = mean.output[0]
        chain = [mean]
        users = consumers.get(m_out, [])
        if len(users) == 1 and users[0].op_type == "Reshape":  # (N, C, 1, 1) spelled again
            chain.append(users[0])
            m_out = users[0].output[0]
        sub = only(m_out, "Sub")
        if sub is None or list(sub.input) != [x, m_out]:
            continue
        d = sub.output[0]
        d_users = consumers.get(d, [])
        square = next((u for u in d_users if u.op_type == "Mul" and list(u.input) == [d, d]), None)
        scale_mul = next((u for u in d_users if u.op_type == "Mul" and u is not square), None)
        if square is None or scale_mul is None or len(d_users) != 2:
            continue
        var = only_mean(square.output[0])
        add_eps = only(var.output[0], "Add") if var is not None else None
        sqrt = only(add_eps.output[0], "Sqrt") if add_eps is not None else None
        recip = only(sqrt.output[0], "Reciprocal") if sqrt is not None else None
        if recip is None:
            continue
        # γ = 1 or β = 0 (an untrained norm) are folded away by tf2onnx: y = d·r, d·(r·γ), (…) + β
        if recip.output[0] in scale_mul.input:
            gamma_mul, gamma = None, np.ones(1, np.float32)
        else:
            gamma_mul = only(recip.output[0], "Mul")
            if gamma_mul is None or gamma_mul.output[0] not in scale_mul.input:
                continue
            gamma = const(next(i for i in gamma_mul.input if i != recip.output[0]))
        add_beta = only(scale_mul.output[0], "Add")
        beta = const(next(i for i in add_beta.input if i != scale_mul.output[0])) if add_beta is not None else None
        if beta is None:
            add_beta, beta = None, np.zeros(1, np.float32)
        eps = const(next(i for i in add_eps.input if i != var.output[0]))
        channels = _channels(proto, x, shapes) or _conv_filters(producers.get(x), inits) or max(
            (np.size(v) for v in (gamma, beta) if v is not None and np.size(v) > 1), default=None)
        gamma, beta = _per_channel(gamma, channels), _per_channel(beta, channels)
        if eps is None or eps.size != 1 or gamma is None or beta is None:
            continue
        inner = [*chain, sub, square, var, add_eps, sqrt, recip, *([gamma_mul] if gamma_mul else []), scale_mul]
        last = add_beta if add_beta is not None else scale_mul
        if any(out in graph_outputs for node in inner[:-1] for out in node.output) or (
                add_beta is not None and scale_mul.output[0] in graph_outputs):
            continue
        stem = f"{mean.name}/InstanceNormalization"
        scale_name, bias_name = f"{stem}/scale", f"{stem}/B"
        g.initializer.extend([numpy_helper.from_array(gamma, scale_name), numpy_helper.from_array(beta, bias_name)])
        added.append((last, helper.make_node("InstanceNormalization", [x, scale_name, bias_name],
                                             [last.output[0]], name=stem, epsilon=float(eps.reshape(-1)[0]))))
        removed |= {id(node) for node in [*inner, last]}
    if not added:
        return 0
    replacement = {id(old): new for old, new in added}
    nodes = [replacement.get(id(n), n) for n in g.node if id(n) not in removed or id(n) in replacement]
    del g.node[:]
    g.node.extend(nodes)
    used = {name for node in g.node for name in node.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return len(added)


def _channels(proto, name, shapes) -> int | None:
    """The channel count (NCHW axis 1) of tensor ``name``, from ONNX shape inference (run once)."""
    if not shapes:
        import onnx

        inferred = onnx.shape_inference.infer_shapes(proto).graph
        for value in [*inferred.value_info, *inferred.input, *inferred.output]:
            shapes[value.name] = [d.dim_value or None for d in value.type.tensor_type.shape.dim]
        shapes.setdefault("", None)
    dims = shapes.get(name)
    return dims[1] if dims and len(dims) == 4 else None


def _conv_filters(node, inits) -> int | None:
    """The output channels of a ``Conv`` node (its weight's first dimension), else None."""
    if node is None or node.op_type != "Conv" or node.input[1] not in inits:
        return None
    return int(inits[node.input[1]].dims[0])


def _per_channel(value, channels):
    """A γ or β constant as a (C,) float32 vector, if it is one (shape (), (1,), (C,), (C,1,1) or
    (1,C,1,1): constant over N, H, W); else None."""
    if value is None or channels is None:
        return None
    v = np.asarray(value, np.float32)
    if v.size == 1:
        return np.full(channels, v.reshape(-1)[0], np.float32)
    if v.size == channels and v.ndim <= 4 and (v.ndim == 1 or (v.shape[-2:] == (1, 1) and v.shape[-3] == channels)):
        return v.reshape(-1)
    return None


def session_options(threads: int = 1, level: str = GRAPH_OPTIMIZATION, optimized_path=None):
    """``onnxruntime.SessionOptions`` as CMSSW's ``ONNXService`` sets them (:data:`SESSION_OPTIONS`;
    ``threads`` intra-op threads, 1 by default as there)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = SESSION_OPTIONS["inter_op_num_threads"]
    options.execution_mode = getattr(ort.ExecutionMode, SESSION_OPTIONS["execution_mode"])
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.log_severity_level = 3
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


def session(content, threads: int = 1, level: str = GRAPH_OPTIMIZATION):
    """An ONNX Runtime CPU session on ``content`` (bytes or a path), with one clear error if the
    file is not a model ONNX Runtime can run."""
    import onnxruntime as ort

    source = content if isinstance(content, bytes) else str(content)
    try:
        return ort.InferenceSession(source, session_options(threads, level), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's InvalidProtobuf, InvalidGraph, Fail, NoSuchFile …
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        where = "the model" if isinstance(content, bytes) else str(content)
        raise ExportError(f"ONNX Runtime cannot load {where}: {first}") from None


def feeds(sess, inputs: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """``inputs`` (in the Keras model's order, which the export keeps) keyed by the session's input names."""
    names = [i.name for i in sess.get_inputs()]
    if len(names) != len(inputs):
        raise ExportError(f"the ONNX model has {len(names)} inputs, {len(inputs)} given")
    return {name: np.ascontiguousarray(x, dtype=np.float32) for name, x in zip(names, inputs)}


def run(sess, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(o) for o in sess.run(None, feeds(sess, inputs))]


def run_all(sess, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """ONNX Runtime outputs for every event at batch 1 (the deployed setting), in Keras' order."""
    per_event = [run(sess, [x[i:i + 1] for x in inputs]) for i in range(len(inputs[0]))]
    return [np.concatenate(outs) for outs in zip(*per_event)]


def time_session(sess, inputs: Sequence[np.ndarray], *, runs: int = 200, warmup: int = 20, cpu: bool = False):
    """Milliseconds per ``run()`` with the inputs prepared once (as :func:`export.latency.time_tflite`)."""
    from export.latency import time_calls

    feed = feeds(sess, inputs)
    return time_calls(lambda: sess.run(None, feed), runs=runs, warmup=warmup, cpu=cpu)


def ops_used(content: bytes) -> list[str]:
    """The ONNX op types of a model file (e.g. ``Conv``), sorted."""
    import onnx

    return sorted({node.op_type for node in onnx.load_from_string(content).graph.node})


def describe(content: bytes, threads: int = 1) -> dict[str, Any]:
    """Opset, inputs and outputs (name, shape with ``"batch"``, dtype) of an ONNX file, and the session
    options it was validated and timed with (``threads`` intra-op threads), for the report."""
    import onnx

    proto = onnx.load_from_string(content)

    def io(values):
        return [{"name": v.name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
                 "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name}
                for v in values]

    return {"opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
            "inputs": io(proto.graph.input), "outputs": io(proto.graph.output), "layout": "NHWC",
            "session_options": {**SESSION_OPTIONS, "intra_op_num_threads": threads},
            "graph_optimization_level": GRAPH_OPTIMIZATION}


_TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32", "int64": "TYPE_INT64"}


def triton_config(name: str, description: dict[str, Any]) -> str:
    """A Triton ``config.pbtxt`` for the ONNX file (``backend: "onnxruntime"``, batch dimension
    ``-1`` in the dims, ``max_batch_size: 0``, one CPU instance with CMSSW's one intra-op and one
    inter-op thread)."""
    def tensors(kind):
        return ",\n".join(
            f'  {{\n    name: "{v["name"]}"\n    data_type: {_TRITON_TYPES[v["dtype"]]}\n'
            f'    dims: [ {", ".join(str(-1 if isinstance(d, str) or not d else d) for d in v["shape"])} ]\n  }}'
            for v in description[kind])

    return (f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: 0\n'
            f"input [\n{tensors('inputs')}\n]\noutput [\n{tensors('outputs')}\n]\n"
            'instance_group [ { count: 1 kind: KIND_CPU } ]\n'
            'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n'
            'parameters { key: "inter_op_thread_count" value: { string_value: "1" } }\n')


def cmssw_snippet(name: str, description: dict[str, Any], source: str | None = None) -> str:
    """A short CMSSW producer: ``cms::Ort::ONNXRuntime`` in the global cache (one session per job, made
    with ``ONNXRuntime::defaultSessionOptions(Backend::cpu)``: ONNXService's threads), the file through
    ``edm::FileInPath``, the inputs by name as flat NHWC, and
    ``run(input_names, FloatArrays&, input_shapes, output_names, batch_size)`` — the signatures of
    ``PhysicsTools/ONNXRuntime/interface/ONNXRuntime.h``."""
    cls = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", name) if part) + "ONNXProducer"
    ins, outs = description["inputs"], description["outputs"]
    sizes = [int(np.prod([d for d in v["shape"][1:]])) for v in ins]
    shapes = ", ".join("{1, " + ", ".join(str(d) for d in v["shape"][1:]) + "}" for v in ins)
    layout = "; ".join(f'"{v["name"]}" [{", ".join(str(d) for d in v["shape"][1:])}] at '
                       + ("((h * W + w) * C + c)" if len(v["shape"]) == 4 else "its flat index") for v in ins)
    fills = "\n".join(f"    // input {k}: \"{v['name']}\", {sizes[k]} floats per event (fill from the event)"
                      for k, v in enumerate(ins))
    return f"""// {cls}.cc — from tfphys-export --onnx (opset {description['opset']}); a sketch, not a tested plugin.
// Copy {source or name + ".onnx"} into a data package as MyAnalysis/MyTrigger/data/{name}.onnx (the path below).
// Inputs are float32, flat, in the model's own NHWC order: {layout}.
#include "FWCore/Framework/interface/Event.h"
#include "FWCore/Framework/interface/MakerMacros.h"
#include "FWCore/Framework/interface/stream/EDProducer.h"
#include "FWCore/ParameterSet/interface/ConfigurationDescriptions.h"
#include "FWCore/ParameterSet/interface/FileInPath.h"
#include "FWCore/ParameterSet/interface/ParameterSet.h"
#include "FWCore/ParameterSet/interface/ParameterSetDescription.h"
#include "PhysicsTools/ONNXRuntime/interface/ONNXRuntime.h"

class {cls} : public edm::stream::EDProducer<edm::GlobalCache<cms::Ort::ONNXRuntime>> {{
public:
  {cls}(const edm::ParameterSet& cfg, const cms::Ort::ONNXRuntime*) {{ produces<std::vector<float>>(); }}
  // one session per job, shared by the streams; ONNXService's options (1 intra-op, 1 inter-op thread)
  static std::unique_ptr<cms::Ort::ONNXRuntime> initializeGlobalCache(const edm::ParameterSet& cfg) {{
    auto options = cms::Ort::ONNXRuntime::defaultSessionOptions(cms::Ort::Backend::cpu);
    return std::make_unique<cms::Ort::ONNXRuntime>(cfg.getParameter<edm::FileInPath>("model_path").fullPath(),
                                                   &options);
  }}
  static void globalEndJob(const cms::Ort::ONNXRuntime*) {{}}
  static void fillDescriptions(edm::ConfigurationDescriptions& descriptions) {{
    edm::ParameterSetDescription desc;
    desc.add<edm::FileInPath>("model_path", edm::FileInPath("MyAnalysis/MyTrigger/data/{name}.onnx"));
    descriptions.addWithDefaultLabel(desc);
  }}

  void produce(edm::Event& event, const edm::EventSetup&) override {{
    cms::Ort::FloatArrays inputs{{{", ".join(f"std::vector<float>({n}, 0.f)" for n in sizes)}}};
{fills}
    auto outputs = globalCache()->run({{{", ".join(f'"{v["name"]}"' for v in ins)}}}, inputs, {{{shapes}}},
                                      {{{", ".join(f'"{v["name"]}"' for v in outs)}}}, 1);
    event.put(std::make_unique<std::vector<float>>(outputs[0]));  // "{outs[0]['name']}", flat
  }}
}};
DEFINE_FWK_MODULE({cls});
// python: process.{name} = cms.EDProducer("{cls}",
//             model_path = cms.FileInPath("MyAnalysis/MyTrigger/data/{name}.onnx"))
"""


def write_integration(out, name: str, content: bytes, source: str | None = None) -> list[str]:
    """Beside ``model.onnx``: a Triton model directory ``triton/NAME/`` (``config.pbtxt`` and
    ``1/model.onnx``, as SONIC serves it) and ``cmssw/NAME_onnx_producer.cc`` (``source``: the ONNX file's
    name beside it, e.g. ``model.onnx``, which the snippet says to copy), each written whole
    (:mod:`export.files`: the directory is swapped in at once). Returns the files written, relative
    to ``out``."""
    from pathlib import Path

    from export import files

    out = Path(out)
    description = describe(content)
    files.replace_dir(out / "triton" / name, {"config.pbtxt": triton_config(name, description).encode(),
                                              "1/model.onnx": content})
    (out / "cmssw").mkdir(exist_ok=True)
    files.write_text(out / "cmssw" / f"{name}_onnx_producer.cc", cmssw_snippet(name, description, source))
    return [f"triton/{name}/config.pbtxt", f"triton/{name}/1/model.onnx", f"cmssw/{name}_onnx_producer.cc"]
