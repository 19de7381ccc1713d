"""Profile LiteRT (TFLite) CPU latency of the paper-size CoDAE, and test export-time rewrites.

Why: the deployment target is LiteRT, 1 thread, batch 1, builtin ops only (no Flex), with
full-model float16 p99 ≤ 25 ms, f_m float16 p99 ≤ 2 ms and int8 full forward p99 ≤ 10 ms.
LiteRT's Python API has no op profiler, so cost is found by (a) converting *variants* of the
model and timing them side by side, and (b) converting every layer as its own one-layer model
at its real input shape and timing those.

All timings: ``Interpreter(model_content=..., num_threads=T)`` (XNNPACK, the default CPU
delegate), batch 1, ``--warmup`` untimed invokes, then ``--repeats`` timed ``invoke()`` calls.
Interpreters compared in one table are timed *interleaved* — in rounds of ``--block``
consecutive invokes per model (default 10: warm caches as in a trigger loop; 1 = strict
round-robin, which makes memory-bound layers look slower) — because this machine is shared;
read the ratio columns more than the absolute ms (they moved by up to ±40 % between runs here).

Sections (``--sections``, default all but ``extras``):

* ``variants``  — full model, float32, export-time rewrites (all numerically equivalent except
  the ``no-norm`` ablation, which replaces every instance norm by identity to show its share):
  Keras model as-is (``from_keras_model``, batch None); batch fixed to 1; ``GroupedConv2D`` →
  ``keras.layers.Conv2D(groups=g)`` with the same weights; ``GroupNormalization(groups=-1)`` →
  :class:`InstanceNorm` (4-D mean/var over H, W); both (= "deploy").
* ``precision`` — f_m, f_R, decoder, full × {baseline, deploy} × {float32, float16, dynamic-range,
  int8 (full-integer, float I/O, ``TFLITE_BUILTINS_INT8``)}: p50/p99, file size, max |Δ| vs Keras,
  ops left in float by the int8 converter; int8-only vs int8+builtins op sets compared on f_m.
  Baseline int8 of f_R and the decoder only with ``--full-grid`` (calibration is slow).
* ``lowering``  — which TFLite ops one instance norm becomes (Keras GroupNormalization vs
  :class:`InstanceNorm`, float32 and int8), and what one such layer costs.
* ``layers``    — per-layer breakdown: every layer of f_m, f_R, decoder as a one-layer float32
  model at its input shape, baseline layer and its deploy replacement timed interleaved; the
  sum over layers is printed next to the whole sub-model as a check.
* ``threads``   — 1 vs 2 threads.
* ``extras``    — slow int8 alternatives on the full deploy model: instance-norm ops kept float
  (QuantizationDebugger deny-list) and 16×8 quantisation (int16 activations).

Weights: a fresh ``build_codae()`` has GroupNormalization gamma = 1, beta = 0 and zero conv biases;
the converter folds ``x * 1`` and ``x + 0`` away (and so hides the bias ADD that follows
``GroupedConv2D``'s concat), which would under-state a trained model's cost. Unless ``--model``
points to a trained ``.keras`` file, gamma ~ U(0.5, 1.5), beta and biases ~ N(0, 0.1) are set.

Usage: python tools/profile_tflite.py [--repeats 200] [--threads 1] [--sections variants,layers]
A default run took 5–6 min here (int8 calibration with ``--calib 100`` masks is ~2 min of it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import time
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402
from keras import ops  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2,
)

import tfphys.models  # noqa: E402,F401  (registers the custom layers for --model)
from export.convert import grouped_conv_as_conv2d  # noqa: E402
from export.convert import rewrite as convert_rewrite  # noqa: E402
from tfphys.darkshowers.codae import build_codae  # noqa: E402
from tfphys.darkshowers.layers import SpatialConditioning  # noqa: E402
from tfphys.layers import GroupedConv2D  # noqa: E402

tf.get_logger().setLevel("ERROR")
SUBMODELS = ("f_m", "f_R", "decoder")
ALL_SECTIONS = ("variants", "precision", "lowering", "layers", "threads")


# --------------------------------------------------------------------------- export rewrites
class InstanceNorm(keras.layers.Layer):
    """Instance norm on NHWC as 4-D ops: mean and variance over axes (1, 2), per channel.

    Same maths and epsilon as ``GroupNormalization(groups=-1)`` (two-pass variance), but without
    its reshape to ``(B, H, W, C, 1)`` and 5-D MEAN. Lowers to MEAN, SUB, MUL, MEAN, ADD, RSQRT,
    MUL, MUL, ADD — all int8-quantisable (``d * d`` instead of SQUARE, no NEG).
    """

    def __init__(self, epsilon=1e-3, one_pass=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon
        self.one_pass = one_pass  # var = E[x²] − E[x]²: one fewer full-size op, less accurate

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(input_shape[-1],), initializer="zeros")

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        if self.one_pass:
            var = ops.mean(x * x, axis=(1, 2), keepdims=True) - mean * mean
            inv = ops.rsqrt(var + self.epsilon) * self.gamma
            return x * inv + (self.beta - mean * inv)
        d = x - mean
        var = ops.mean(d * d, axis=(1, 2), keepdims=True)
        return d * (ops.rsqrt(var + self.epsilon) * self.gamma) + self.beta


def replacement(layer, *, grouped_conv=False, norm=None):
    """The export-time replacement of ``layer`` (weights copied), or None to keep it.

    norm: None, "inorm" (:class:`InstanceNorm`), "inorm1" (its one-pass variant) or "identity".
    """
    if grouped_conv and isinstance(layer, GroupedConv2D):
        return grouped_conv_as_conv2d(layer)  # what tfphys-export does
    if norm and isinstance(layer, keras.layers.GroupNormalization):
        if layer.groups not in (-1, layer.gamma.shape[0]):
            return None  # a real group norm, not an instance norm
        if norm == "identity":
            return keras.layers.Identity(name=layer.name)
        new = InstanceNorm(layer.epsilon, one_pass=norm == "inorm1", name=layer.name)
        new.build((None, None, None, layer.gamma.shape[0]))
        new.set_weights(layer.get_weights())  # [gamma, beta]
        return new
    return None


def rewrite(model, *, grouped_conv=False, norm=None, batch=1):
    """``export.convert.rewrite`` with the :func:`replacement` of each layer (batch fixed)."""
    return convert_rewrite(model, lambda layer: replacement(layer, grouped_conv=grouped_conv, norm=norm),
                           batch=batch)


def perturb_weights(model, seed=0):
    """Non-trivial gamma/beta/biases, as after training (see module docstring)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.split("/")[-1]
        if name == "gamma":
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
        elif name in ("beta", "bias"):
            v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32"))


# --------------------------------------------------------------------------- conversion
def to_tflite(model, mode="f32", rep=None, op_sets=None, keras_path=False, deny_ops=None):
    """TFLite flatbuffer of ``model``. mode: f32 | f16 | dr (dynamic range) | int8 | int16x8.

    Default route: trace at the model's (static) input shapes, freeze variables, convert the
    concrete function — same ops as ``from_keras_model`` but ~3× faster to convert.
    ``keras_path=True``: ``TFLiteConverter.from_keras_model`` (batch None, the repo's route).
    """
    if keras_path:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
    else:
        specs = [tf.TensorSpec((1, *i.shape[1:]), tf.float32) for i in model.inputs]
        fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
        frozen = convert_variables_to_constants_v2(fn.get_concrete_function(*specs))
        conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    conv.target_spec.supported_ops = op_sets or [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "f32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "f16":
        conv.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        conv.representative_dataset = rep
        if mode == "int8" and op_sets is None:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int16x8":
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    with contextlib.redirect_stdout(io.StringIO()):  # silence "Saved artifact at ..."
        if deny_ops:
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=rep,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(
                    denylisted_ops=list(deny_ops)))
            return debugger.get_nondebug_quantized_model()
        return conv.convert()


# --------------------------------------------------------------------------- LiteRT helpers
def interpreter(content, threads=1, xnnpack=True):
    kwargs = {} if xnnpack else {
        "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interp = Interpreter(model_content=content, num_threads=threads, **kwargs)
    interp.allocate_tensors()
    return interp


def feed(interp, inputs):
    """Set inputs, matched to the interpreter's inputs by shape (their order may differ)."""
    for detail in interp.get_input_details():
        value = next(v for v in inputs if tuple(v.shape) == tuple(detail["shape"]))
        interp.set_tensor(detail["index"], np.asarray(value, dtype=detail["dtype"]))


def run(interp, inputs):
    feed(interp, inputs)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def bench(interps, inputs, repeats, warmup, block=1):
    """ms per invoke, shape (len(interps), repeats).

    Interleaved in rounds: each round runs every interpreter ``block`` times in a row (the
    first of each block untimed). block=1 is strict round-robin: every invoke then starts with
    caches full of the *other* models' data; larger blocks time the warm steady state that a
    trigger calling one model event after event sees, while load drift is still shared.
    """
    inputs = inputs if isinstance(inputs[0], (list, tuple)) else [inputs] * len(interps)
    for interp, x in zip(interps, inputs):
        feed(interp, x)
        for _ in range(warmup):
            interp.invoke()
    times = np.empty((len(interps), repeats))
    clock = time.perf_counter_ns
    done = 0
    while done < repeats:
        n = min(block, repeats - done)
        for k, interp in enumerate(interps):
            if block > 1:
                interp.invoke()
            for r in range(done, done + n):
                start = clock()
                interp.invoke()
                times[k, r] = (clock() - start) / 1e6
        done += n
    return times


def op_census(content):
    """Counter of (op, output dtype) over the plain (undelegated) execution plan."""
    interp = interpreter(content, xnnpack=False)
    dtypes = {t["index"]: t["dtype"].__name__ for t in interp.get_tensor_details()}
    return Counter((o["op_name"], dtypes[o["outputs"][0]]) for o in interp._get_ops_details())


def float_ops(content):
    """Compute ops that an int8 model still runs in float32 (QUANTIZE/DEQUANTIZE excluded)."""
    return {op: n for (op, dt), n in op_census(content).items()
            if dt == "float32" and op not in ("DEQUANTIZE", "QUANTIZE")}


def n_ops(content, op):
    return sum(n for (name, _), n in op_census(content).items() if name == op)


def pct(t):
    return np.percentile(t, 50), np.percentile(t, 99)


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")
    print(flush=True)


def masks(n, seed):
    """Random sparse binary masks (~5 % ones), shape (n, 1, 72, 58, 1)."""
    return (np.random.default_rng(seed).random((n, 1, 72, 58, 1)) < 0.05).astype(np.float32)


# --------------------------------------------------------------------------- sections
def _batch(samples):
    """list of per-sample input lists → one batched array (or list of arrays)."""
    cols = [np.concatenate(col) for col in zip(*samples)]
    return cols[0] if len(cols) == 1 else cols


class Context:
    """The model, its sub-models, data and the conversions shared between sections."""

    def __init__(self, args):
        self.args = args
        keras.utils.set_random_seed(0)
        if args.model:
            self.model = keras.saving.load_model(args.model)
        else:
            self.model = build_codae()
            perturb_weights(self.model)
        # Layer input shapes, read before any rewrite re-uses (and so re-calls) the layers.
        self.layer_shapes = {
            sub: [(layer, [tuple(t.shape[1:]) for t in keras.tree.flatten(layer.input)])
                  for layer in self.model.get_layer(sub).layers
                  if not isinstance(layer, keras.layers.InputLayer)]
            for sub in SUBMODELS}
        calib, evals = masks(args.calib, 1), masks(args.n_eval, 2)
        f_r, f_m = self.model.get_layer("f_R"), self.model.get_layer("f_m")

        def data(x):  # per model: list of input lists (one per sample)
            z, z_m = f_r.predict(x[:, 0], verbose=0), f_m.predict(x[:, 0], verbose=0)
            dec = [[z[i:i + 1], z_m[i:i + 1]] for i in range(len(x))]
            single = [[x[i]] for i in range(len(x))]
            return {"f_m": single, "f_R": single, "full": single, "decoder": dec}

        self.calib, self.evals = data(calib), data(evals)
        self.keras_models = {"full": self.model, **{s: self.model.get_layer(s) for s in SUBMODELS}}
        # Compiled predict (eager calls of grouped convs are slow), all eval masks in one batch.
        self.reference = {
            name: m.predict(_batch(self.evals[name]), verbose=0)
            for name, m in self.keras_models.items()}
        self._variants = {}
        self.flatbuffers = {}
        self.convert_seconds = {}

    def variant(self, name, which):
        """Keras (sub)model ``name`` rewritten as ``which`` (baseline | gconv | inorm | ...)."""
        key = (name, which)
        if key not in self._variants:
            kw = {"baseline": {}, "gconv": {"grouped_conv": True}, "inorm": {"norm": "inorm"},
                  "inorm-1pass": {"norm": "inorm1"},
                  "deploy": {"grouped_conv": True, "norm": "inorm"},
                  "no-norm": {"grouped_conv": True, "norm": "identity"}}[which]
            model = rewrite(self.keras_models[name], **kw)
            if which != "no-norm":  # verify the rewrite is the same function (2 masks, eager;
                # every TFLite table row also reports max|Δ| against the original Keras model)
                got = np.concatenate([model(x if len(x) > 1 else x[0]).numpy()
                                      for x in self.evals[name][:2]])
                diff = np.abs(got - self.reference[name][:2]).max()
                assert diff < 1e-3, f"{name}/{which} differs from Keras by {diff}"
            self._variants[key] = model
        return self._variants[key]

    def tflite(self, name, which, mode, **kw):
        key = (name, which, mode, repr(sorted(kw.items())))
        if key not in self.flatbuffers:
            start = time.perf_counter()
            rep = None
            if mode in ("int8", "int16x8"):
                samples = self.calib[name]
                rep = lambda: (list(s) for s in samples)  # noqa: E731
            try:
                self.flatbuffers[key] = to_tflite(self.variant(name, which), mode, rep, **kw)
            except Exception as e:  # noqa: BLE001 — report converter errors verbatim
                print(f"CONVERSION FAILED {name}/{which}/{mode}: {type(e).__name__}: {e}")
                self.flatbuffers[key] = None
            self.convert_seconds[key] = time.perf_counter() - start
        return self.flatbuffers[key]

    def diff(self, name, content):
        """max and mean |TFLite − Keras| over the eval masks."""
        interp = interpreter(content)
        got = np.concatenate([run(interp, x) for x in self.evals[name]])
        d = np.abs(got - self.reference[name])
        return float(d.max()), float(d.mean())


def section_variants(ctx, a):
    print("## 1. Export-time rewrites — full CoDAE, float32 (interleaved)\n")
    whiches = ["keras as-is", "baseline", "gconv", "inorm", "inorm-1pass", "deploy", "no-norm"]
    contents = {}
    for w in whiches:
        if w == "keras as-is":
            with contextlib.redirect_stdout(io.StringIO()):
                contents[w] = to_tflite(ctx.model, keras_path=True)
        else:
            contents[w] = ctx.tflite("full", w, "f32")
    interps = [interpreter(c, a.threads) for c in contents.values()]
    times = bench(interps, ctx.evals["full"][0], a.repeats, a.warmup, a.block)
    base = np.median(times[0])
    notes = {"keras as-is": "from_keras_model, batch None (SHAPE ops)",
             "baseline": "same model, batch fixed to 1",
             "gconv": "GroupedConv2D → Conv2D(groups)",
             "inorm": "GroupNormalization(-1) → InstanceNorm (4-D)",
             "inorm-1pass": "InstanceNorm, var = E[x²]−E[x]²",
             "deploy": "gconv + inorm",
             "no-norm": "ablation: norms → identity (not equivalent)"}
    rows = []
    for (w, c), interp, t in zip(contents.items(), interps, times):
        census = op_census(c)
        n_partitions = sum(o["op_name"] == "DELEGATE" for o in interp._get_ops_details())
        diff = ctx.diff("full", c)[0] if w != "no-norm" else float("nan")
        rows.append([w, *pct(t), np.median(t) / base, base / np.median(t),
                     sum(census.values()), n_partitions, f"{diff:.1e}", notes[w]])
    table(["variant", "p50 ms", "p99 ms", "÷ as-is", "speed-up", "ops", "XNNPACK partitions",
           "max|Δ| vs Keras", "what"], rows)


def section_precision(ctx, a):
    print("## 2. Precision × model × rewrite (interleaved within each model)\n")
    modes = ["f32", "f16", "dr", "int8"]
    for name in ["f_m", "f_R", "decoder", "full"]:
        contents = {(w, m): ctx.tflite(name, w, m) for w in ("baseline", "deploy") for m in modes
                    if not (w == "baseline" and m == "int8" and name in ("f_R", "decoder")
                            and not a.full_grid)}  # slow to calibrate; f_m and full show it
        contents = {k: v for k, v in contents.items() if v is not None}
        interps = [interpreter(c, a.threads) for c in contents.values()]
        times = bench(interps, ctx.evals[name][0], a.repeats, a.warmup, a.block)
        ref_scale = float(np.abs(ctx.reference[name]).max())
        base = np.median(times[0])
        rows = []
        for ((w, m), c), t in zip(contents.items(), times):
            size = len(c) / len(contents[(w, "f32")])
            fl = float_ops(c) if m == "int8" else {}
            rows.append([w, m, *pct(t), base / np.median(t), f"{len(c) / 1e6:.2f}", f"{size:.3f}",
                         "{:.2g} / {:.2g}".format(*ctx.diff(name, c)),
                         ", ".join(f"{k}×{v}" for k, v in sorted(fl.items())) or "—"])
        print(f"### {name}  (Keras output max |y| over the eval masks = {ref_scale:.3g})\n")
        table(["rewrite", "precision", "p50 ms", "p99 ms", "speed-up vs baseline f32", "MB",
               "size ÷ f32", "max / mean |Δ| vs Keras", "int8: ops left float32"], rows)
    # Do the op sets matter for int8? (f_m: cheap to convert twice)
    print("int8 op sets on f_m (same calibration):")
    for w in ("baseline",) + (("deploy",) if a.full_grid else ()):
        a8 = ctx.tflite("f_m", w, "int8")
        mixed = ctx.tflite("f_m", w, "int8", op_sets=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                                      tf.lite.OpsSet.TFLITE_BUILTINS])
        same = a8 is not None and mixed is not None and a8 == mixed
        print(f"  {w}: [TFLITE_BUILTINS_INT8] {'ok' if a8 else 'FAILED'}, "
              f"[INT8, BUILTINS] {'ok' if mixed else 'FAILED'}, identical flatbuffers: {same}; "
              f"QUANTIZE ops: {n_ops(a8, 'QUANTIZE') if a8 else '-'}, "
              f"DEQUANTIZE ops: {n_ops(a8, 'DEQUANTIZE') if a8 else '-'}")
    slow = sorted(ctx.convert_seconds.items(), key=lambda kv: -kv[1])[:3]
    print("  slowest conversions: " + ", ".join(f"{'/'.join(map(str, k[:3]))} {s:.0f} s"
                                               for k, s in slow) + "\n")


def section_lowering(ctx, a):
    print("## 3. How one instance norm lowers (f_m stage0_norm, input 1×72×58×64)\n")
    gn = ctx.model.get_layer("f_m").get_layer("stage0_norm")
    shape = (1, 72, 58, 64)
    x = np.random.default_rng(3).normal(size=shape).astype("float32")
    rep = lambda: ([np.random.default_rng(i).normal(size=shape).astype("float32")]  # noqa: E731
                   for i in range(20))

    class Mean(keras.layers.Layer):  # the reductions alone, 5-D (as GroupNormalization) vs 4-D
        def __init__(self, five_d, **kw):
            super().__init__(**kw)
            self.five_d = five_d

        def call(self, v):
            if self.five_d:
                return ops.mean(ops.reshape(v, (*shape, 1)), axis=(1, 2, 4), keepdims=True)
            return ops.mean(v, axis=(1, 2), keepdims=True)

    def one(layer):
        i = keras.Input(batch_shape=shape)
        return keras.Model(i, layer(i))

    layers = {"GroupNormalization(groups=-1)": gn,
              "InstanceNorm": replacement(gn, norm="inorm"),
              "MEAN only, 5-D (1,2,4)": Mean(True), "MEAN only, 4-D (1,2)": Mean(False)}
    contents = {k: to_tflite(one(l)) for k, l in layers.items()}
    for k in list(layers)[:2]:
        c8 = to_tflite(one(layers[k]), "int8", rep)
        seq = [f"{o['op_name']}" for o in interpreter(contents[k], xnnpack=False)._get_ops_details()]
        print(f"- {k}, float32: {' → '.join(seq)}")
        print(f"  int8: ops left float32: {float_ops(c8) or 'none'}; "
              f"QUANTIZE×{n_ops(c8, 'QUANTIZE')}, DEQUANTIZE×{n_ops(c8, 'DEQUANTIZE')}")
    print()
    interps, labels = [], []
    for k, c in contents.items():
        for xnn in (True, False):
            interps.append(interpreter(c, a.threads, xnnpack=xnn))
            labels.append((k, "XNNPACK" if xnn else "builtin kernels (no delegate)"))
    times = bench(interps, [x], a.repeats, a.warmup, a.block)
    table(["layer", "runtime", "p50 ms", "p99 ms"], [[*lab, *pct(t)] for lab, t in zip(labels, times)])


KINDS = [(GroupedConv2D, "conv"), (keras.layers.Conv2D, "conv"),
         (keras.layers.GroupNormalization, "norm"), (keras.layers.LeakyReLU, "act"),
         (SpatialConditioning, "cond"), (keras.layers.UpSampling2D, "upsample"),
         (keras.layers.MaxPooling2D, "pool"), (keras.layers.Add, "add")]


def kind(layer):
    return next((k for cls, k in KINDS if isinstance(layer, cls)), "other")


def section_layers(ctx, a):
    print("## 4. Per-layer breakdown, float32 (each layer a one-layer model at its input shape)\n")
    entries, interps, inputs = [], [], []
    rng = np.random.default_rng(4)
    for sub in SUBMODELS:
        for layer, shapes in ctx.layer_shapes[sub]:
            xs = [rng.normal(size=(1, *s)).astype("float32") for s in shapes]
            new = replacement(layer, grouped_conv=True, norm="inorm")
            for which, lay in (("baseline", layer), ("deploy", new)):
                if lay is None:
                    continue
                ins = [keras.Input(batch_shape=(1, *s)) for s in shapes]
                model = keras.Model(ins[0] if len(ins) == 1 else ins,
                                    lay(ins[0] if len(ins) == 1 else ins))
                interps.append(interpreter(to_tflite(model), a.threads))
                inputs.append(xs)
                entries.append((sub, layer.name, kind(layer), which, shapes[0]))
        for which in ("baseline", "deploy"):  # the whole sub-model, for the sum check
            interps.append(interpreter(ctx.tflite(sub, which, "f32"), a.threads))
            inputs.append(ctx.evals[sub][0])
            entries.append((sub, "(whole)", "whole", which, None))
    # Fixed per-invoke cost (Python call + interpreter), included in every one-layer figure.
    i = keras.Input(batch_shape=(1, 1))
    interps.append(interpreter(to_tflite(keras.Model(i, i + 1.0)), a.threads))
    inputs.append([np.zeros((1, 1), "float32")])
    entries.append(("-", "(trivial x+1 model)", "overhead", "baseline", (1,)))
    times = np.median(bench(interps, inputs, a.repeats, a.warmup, a.block), axis=1)
    overhead = times[-1]
    entries, times = entries[:-1], times[:-1]
    print(f"Per-invoke overhead (trivial model): {1000 * overhead:.0f} µs — included in every "
          f"row; sums of n layers include n× it.\n")
    ms = {}  # (sub, layer) -> {which: ms}
    for (sub, name, k, which, shape), t in zip(entries, times):
        ms.setdefault((sub, name, k, shape), {})[which] = t
    for v in ms.values():  # unreplaced layers cost the same in both
        v.setdefault("deploy", v["baseline"])

    rows = []
    for sub in SUBMODELS:
        layer_items = [(k, v) for k, v in ms.items() if k[0] == sub and k[2] != "whole"]
        whole = next(v for k, v in ms.items() if k[0] == sub and k[2] == "whole")
        for knd in sorted({k[2] for k, _ in layer_items}):
            b = sum(v["baseline"] for k, v in layer_items if k[2] == knd)
            d = sum(v["deploy"] for k, v in layer_items if k[2] == knd)
            n = sum(1 for k, _ in layer_items if k[2] == knd)
            rows.append([sub, knd, n, b, d, b / max(d, 1e-9)])
        sb = sum(v["baseline"] for _, v in layer_items)
        sd = sum(v["deploy"] for _, v in layer_items)
        rows.append([sub, "**sum of layers**", len(layer_items), sb, sd, sb / sd])
        rows.append([sub, "**whole sub-model**", "", whole["baseline"], whole["deploy"],
                     whole["baseline"] / whole["deploy"]])
    table(["sub-model", "layer kind", "layers", "baseline p50 ms", "deploy p50 ms", "speed-up"], rows)

    total_b = sum(v["baseline"] for k, v in ms.items() if k[2] != "whole")
    top = sorted(((k, v) for k, v in ms.items() if k[2] != "whole"),
                 key=lambda kv: -kv[1]["baseline"])[:a.top]
    table(["sub-model", "layer", "kind", "input", "baseline p50 ms", "% of baseline sum",
           "deploy p50 ms"],
          [[k[0], k[1], k[2], "×".join(map(str, k[3])), v["baseline"],
            f"{100 * v['baseline'] / total_b:.1f}", v["deploy"]] for k, v in top])
    total_d = sum(v["deploy"] for k, v in ms.items() if k[2] != "whole")
    top = sorted(((k, v) for k, v in ms.items() if k[2] != "whole"),
                 key=lambda kv: -kv[1]["deploy"])[:a.top]
    print("Deploy model, top layers:\n")
    table(["sub-model", "layer", "kind", "input", "deploy p50 ms", "% of deploy sum"],
          [[k[0], k[1], k[2], "×".join(map(str, k[3])), v["deploy"],
            f"{100 * v['deploy'] / total_d:.1f}"] for k, v in top])


def section_threads(ctx, a):
    print("## 5. Threads — full model, 1 vs 2 threads (interleaved; the 2 cores are shared)\n")
    cases = [("baseline", "f32"), ("deploy", "f32"), ("deploy", "dr"), ("deploy", "int8")]
    interps, labels = [], []
    for w, m in cases:
        c = ctx.tflite("full", w, m)
        if c is None:
            continue
        for threads in (1, 2):
            interps.append(interpreter(c, threads))
            labels.append((w, m, threads))
    times = bench(interps, ctx.evals["full"][0], a.repeats, a.warmup, a.block)
    rows = []
    for i in range(0, len(labels), 2):
        (w, m, _), t1, t2 = labels[i], times[i], times[i + 1]
        rows.append([w, m, *pct(t1), *pct(t2), np.median(t1) / np.median(t2)])
    table(["rewrite", "precision", "1 thr p50", "1 thr p99", "2 thr p50", "2 thr p99",
           "speed-up p50"], rows)


def section_extras(ctx, a):
    print("## 6. Extras — slower int8 alternatives, full deploy model\n")
    norm_ops = ["MEAN", "RSQRT", "SUB", "MUL", "ADD"]
    contents = {"int8": ctx.tflite("full", "deploy", "int8"),
                "int8, norm ops float (deny-list)": ctx.tflite(
                    "full", "deploy", "int8", deny_ops=norm_ops,
                    op_sets=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]),
                "16x8 (int16 activations)": ctx.tflite("full", "deploy", "int16x8"),
                "dr": ctx.tflite("full", "deploy", "dr")}
    contents = {k: v for k, v in contents.items() if v is not None}
    interps = [interpreter(c, a.threads) for c in contents.values()]
    times = bench(interps, ctx.evals["full"][0], max(20, a.repeats // 10), 3)
    table(["variant", "p50 ms", "p99 ms", "max / mean |Δ| vs Keras", "MB"],
          [[k, *pct(t), "{:.2g} / {:.2g}".format(*ctx.diff("full", c)), f"{len(c) / 1e6:.2f}"]
           for (k, c), t in zip(contents.items(), times)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=200, help="timed invokes per model")
    p.add_argument("--warmup", type=int, default=20, help="untimed invokes per model first")
    p.add_argument("--block", type=int, default=10,
                   help="consecutive invokes per model per round (1 = strict round-robin)")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads (section 5 uses 1 and 2)")
    p.add_argument("--calib", type=int, default=100, help="representative masks for int8")
    p.add_argument("--n-eval", type=int, default=16, help="masks for the max|Δ| vs Keras")
    p.add_argument("--top", type=int, default=12, help="rows in the top-layers tables")
    p.add_argument("--model", help="a trained .keras CoDAE (default: build_codae + perturbed weights)")
    p.add_argument("--full-grid", action="store_true",
                   help="also baseline int8 of f_R and decoder, and op sets on deploy f_m (+~45 s)")
    p.add_argument("--sections", default=",".join(ALL_SECTIONS),
                   help=f"comma list of {', '.join(ALL_SECTIONS)}, extras")
    a = p.parse_args(argv)
    sections = a.sections.split(",")
    unknown = set(sections) - {*ALL_SECTIONS, "extras"}
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}")
    start = time.perf_counter()
    print(f"# LiteRT profile — {platform.processor() or platform.machine()}, {os.cpu_count()} cpus,"
          f" TF {tf.__version__}, Keras {keras.__version__}, {a.threads} thread(s),"
          f" {a.repeats} repeats after {a.warmup} warm-up\n")
    ctx = Context(a)
    print(f"[set-up: {time.perf_counter() - start:.0f} s]\n")
    for name in ("variants", "precision", "lowering", "layers", "threads", "extras"):
        if name in sections:
            t0 = time.perf_counter()
            globals()[f"section_{name}"](ctx, a)
            print(f"[section {name}: {time.perf_counter() - t0:.0f} s]\n", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
