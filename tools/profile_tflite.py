"""Profile LiteRT (TFLite) CPU latency of the paper-size CoDAE: where the time goes, layer by layer.

Why: the deployment target is LiteRT, 1 thread, batch 1, builtin ops only (no Flex), with
full-model float16 p99 ≤ 25 ms, f_m float16 p99 ≤ 2 ms and int8 full forward p99 ≤ 10 ms.
LiteRT's Python API has no op profiler, so cost is found by (a) converting *variants* of the
model and timing them side by side, and (b) converting every layer as its own one-layer model
at its real input shape and timing those. For a trained model's export at each precision (the
whole ``tfphys-export`` path, ΔAUROC included) see ``tools/bench_export.py``.

Everything is converted by ``export.convert.convert`` and run through ``export.latency``, as
``tfphys-export`` does. Two graphs of each (sub-)model are compared: ``baseline`` (the Keras model
with its batch fixed to 1, ``export.convert.rewrite``) and ``deploy`` (what ``tfphys-export``
converts, ``export.convert.for_deployment``: ``GroupedConv2D`` → one ``Conv2D(groups)``).

All timings: an ``export.latency.interpreter`` (XNNPACK, the default CPU delegate), batch 1,
``--warmup`` untimed invokes, then ``--repeats`` timed ``invoke()`` calls. Interpreters compared
in one table are timed *interleaved* — in rounds of ``--block`` consecutive invokes per model
(default 10: warm caches as in a trigger loop; 1 = strict round-robin, which makes memory-bound
layers look slower) — because this machine is shared; read the ratio columns more than the
absolute ms (they moved by up to ±40 % between runs here).

Sections (``--sections``, default all):

* ``variants``  — full model, float32: Keras model as-is (batch None), baseline, deploy, and the
  ``no-norm`` ablation (deploy with every ``InstanceNormalization`` replaced by identity: not
  equivalent, it shows the norms' share).
* ``precision`` — f_m, f_R, decoder, full × {baseline, deploy} × {float32, float16, int8 (as
  ``tfphys-export``: full-integer, float I/O, output ops kept float)}: p50/p99, file size,
  max |Δ| vs Keras, compute ops left in float by the int8 converter. Baseline int8 of f_R and the
  decoder only with ``--full-grid`` (calibration is slow).
* ``layers``    — per-layer breakdown: every layer of f_m, f_R, decoder as a one-layer float32
  model at its input shape, baseline layer and its deploy replacement timed interleaved; the
  sum over layers is printed next to the whole sub-model as a check.
* ``threads``   — 1 vs 2 threads.

Weights: a fresh ``build_codae()`` has norm gamma = 1, beta = 0 and zero conv biases; the converter
folds ``x * 1`` and ``x + 0`` away (and so hides the bias ADD that follows ``GroupedConv2D``'s
concat), which would under-state a trained model's cost. Unless ``--model`` points to a trained
CoDAE (a run dir or ``.keras`` file), gamma ~ U(0.5, 1.5), beta and biases ~ N(0, 0.1) are set.

Usage: python tools/profile_tflite.py [--repeats 200] [--threads 1] [--sections variants,layers]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from export import convert as conv  # noqa: E402
from export import latency  # noqa: E402
from export.exporter import load_target  # noqa: E402
from tfphys.darkshowers.codae import build_codae  # noqa: E402
from tfphys.darkshowers.layers import SpatialConditioning  # noqa: E402
from tfphys.layers import GroupedConv2D, InstanceNormalization  # noqa: E402

tf.get_logger().setLevel("ERROR")
SUBMODELS = ("f_m", "f_R", "decoder")
ALL_SECTIONS = ("variants", "precision", "layers", "threads")
PRECISIONS = ("float32", "float16", "int8")


# --------------------------------------------------------------------------- graphs
def baseline(model):
    """The model as trained, its batch fixed to 1 (``export.convert.rewrite`` replacing nothing)."""
    return conv.rewrite(model, lambda layer: None)


def without_norms(model):
    """Ablation, not equivalent: the deploy graph with every instance norm replaced by identity."""
    def replace(layer):
        if isinstance(layer, InstanceNormalization):
            return keras.layers.Identity(name=layer.name)
        return conv.grouped_conv_as_conv2d(layer)

    return conv.rewrite(model, replace)


def perturb_weights(model, seed=0):
    """Non-trivial gamma/beta/biases, as after training (see module docstring)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        name = v.path.split("/")[-1]
        if name == "gamma":
            v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
        elif name in ("beta", "bias"):
            v.assign(rng.normal(0.0, 0.1, v.shape).astype("float32"))


def to_tflite(model, precision="float32", calibration=None):
    """``export.convert.convert`` as ``tfphys-export`` calls it: for int8 the calibration inputs in
    the converter's input order and the output ops kept float."""
    if precision == "float32":
        return conv.convert(model, "float32")
    if precision == "float16":
        return conv.convert(model, "float16")
    f32 = conv.convert(model, "float32")
    order = latency.keras_input_order(latency.interpreter(f32), [t.name for t in model.inputs],
                                      [t.shape[1:] for t in model.inputs])
    return conv.convert(model, "int8", calibration, order, conv.output_names(f32))


# --------------------------------------------------------------------------- LiteRT helpers
def op_census(content):
    """Counter of (op, output dtype) over the plain execution plan (no XNNPACK delegate, so that
    the ops are listed rather than one DELEGATE node)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=content,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    dtypes = {t["index"]: t["dtype"].__name__ for t in interp.get_tensor_details()}
    return Counter((o["op_name"], dtypes[o["outputs"][0]]) for o in interp._get_ops_details())


def float_ops(content):
    """Compute ops that an int8 model still runs in float32 (QUANTIZE/DEQUANTIZE excluded)."""
    return {op: n for (op, dt), n in op_census(content).items()
            if dt == "float32" and op not in ("DEQUANTIZE", "QUANTIZE")}


def bench(interps, inputs, repeats, warmup, block=1):
    """ms per invoke, shape (len(interps), repeats): ``export.latency.time_tflite`` interleaved.

    In rounds: each round times every interpreter for ``block`` invokes in a row (after one untimed
    invoke). block=1 is strict round-robin: every invoke then starts with caches full of the
    *other* models' data; larger blocks time the warm steady state that a trigger calling one
    model event after event sees, while load drift is still shared.
    """
    inputs = inputs if isinstance(inputs[0], (list, tuple)) else [inputs] * len(interps)
    for interp, x in zip(interps, inputs):
        latency.time_tflite(interp, x, runs=1, warmup=warmup)
    rounds = [[] for _ in interps]
    done = 0
    while done < repeats:
        n = min(block, repeats - done)
        for k, (interp, x) in enumerate(zip(interps, inputs)):
            rounds[k].append(latency.time_tflite(interp, x, runs=n, warmup=1 if block > 1 else 0))
        done += n
    return np.array([np.concatenate(r) for r in rounds])


def pct(t):
    s = latency.summary(t)
    return s["p50"], s["p99"]


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c) for c in row) + " |")
    print(flush=True)


def masks(n, seed):
    """Random sparse binary masks (~5 % ones), shape (n, 72, 58, 1)."""
    return (np.random.default_rng(seed).random((n, 72, 58, 1)) < 0.05).astype(np.float32)


# --------------------------------------------------------------------------- shared set-up
class Context:
    """The model, its sub-models, data and the conversions shared between sections."""

    def __init__(self, args):
        self.args = args
        keras.utils.set_random_seed(0)
        if args.model:
            self.model = load_target(args.model)[0]
        else:
            self.model = build_codae()
            perturb_weights(self.model)
        # Layer input shapes, read before any rewrite re-uses (and so re-calls) the layers.
        self.layer_shapes = {
            sub: [(layer, [tuple(t.shape[1:]) for t in keras.tree.flatten(layer.input)])
                  for layer in self.model.get_layer(sub).layers
                  if not isinstance(layer, keras.layers.InputLayer)]
            for sub in SUBMODELS}
        self.keras_models = {"full": self.model, **{s: self.model.get_layer(s) for s in SUBMODELS}}

        def data(x):  # per model: its inputs (Keras order), all events batched
            return {name: ([x] if name in ("full", "f_m", "f_R") else conv.submodel_inputs(self.model, name, [x]))
                    for name in self.keras_models}

        self.calib, self.evals = data(masks(args.calib, 1)), data(masks(args.n_eval, 2))
        # Compiled predict (eager calls of grouped convs are slow), all eval masks in one batch.
        self.reference = {name: m.predict(self.evals[name] if len(self.evals[name]) > 1 else self.evals[name][0],
                                          verbose=0)
                          for name, m in self.keras_models.items()}
        self._graphs = {}
        self.flatbuffers = {}
        self.convert_seconds = {}

    def one(self, name, which="evals"):
        """The first event's inputs of (sub-)model ``name``, batch 1."""
        return [x[:1] for x in getattr(self, which)[name]]

    def graph(self, name, which):
        """Keras (sub-)model ``name`` as ``which``: baseline | deploy | no-norm."""
        key = (name, which)
        if key not in self._graphs:
            build = {"baseline": baseline, "deploy": conv.for_deployment, "no-norm": without_norms}[which]
            self._graphs[key] = build(self.keras_models[name])
        return self._graphs[key]

    def tflite(self, name, which, precision):
        """The flatbuffer, or None (the converter's error printed) when it cannot be converted."""
        key = (name, which, precision)
        if key not in self.flatbuffers:
            start = time.perf_counter()
            calib = self.calib[name]
            calibration = [[x[i:i + 1] for x in calib] for i in range(len(calib[0]))]
            try:
                self.flatbuffers[key] = to_tflite(self.graph(name, which), precision, calibration)
            except conv.ExportError as e:
                print(f"CONVERSION FAILED {name}/{which}/{precision}: {e}")
                self.flatbuffers[key] = None
            self.convert_seconds[key] = time.perf_counter() - start
        return self.flatbuffers[key]

    def diff(self, name, content):
        """max and mean |TFLite − Keras| over the eval masks (batch 1, one event at a time)."""
        interp = latency.interpreter(content)
        inputs = self.evals[name]
        got = np.concatenate([latency.run_tflite(interp, [x[i:i + 1] for x in inputs])[0]
                              for i in range(len(inputs[0]))])
        d = np.abs(got - self.reference[name])
        return float(d.max()), float(d.mean())


# --------------------------------------------------------------------------- sections
def section_variants(ctx, a):
    print("## 1. Export graphs — full CoDAE, float32 (interleaved)\n")
    contents = {"keras as-is": to_tflite(ctx.model)}
    for w in ("baseline", "deploy", "no-norm"):
        contents[w] = ctx.tflite("full", w, "float32")
    interps = [latency.interpreter(c, a.threads) for c in contents.values()]
    times = bench(interps, ctx.one("full"), a.repeats, a.warmup, a.block)
    base = np.median(times[0])
    notes = {"keras as-is": "from_keras_model, batch None (SHAPE ops)",
             "baseline": "same model, batch fixed to 1",
             "deploy": "GroupedConv2D → Conv2D(groups) (tfphys-export)",
             "no-norm": "ablation: deploy, instance norms → identity (not equivalent)"}
    rows = []
    for (w, c), interp, t in zip(contents.items(), interps, times):
        census = op_census(c)
        n_partitions = sum(o["op_name"] == "DELEGATE" for o in interp._get_ops_details())
        diff = ctx.diff("full", c)[0] if w != "no-norm" else float("nan")
        rows.append([w, *pct(t), np.median(t) / base, base / np.median(t),
                     sum(census.values()), n_partitions, f"{diff:.1e}", notes[w]])
    table(["graph", "p50 ms", "p99 ms", "÷ as-is", "speed-up", "ops", "XNNPACK partitions",
           "max|Δ| vs Keras", "what"], rows)


def section_precision(ctx, a):
    print("## 2. Precision × model × graph (interleaved within each model)\n")
    for name in ["f_m", "f_R", "decoder", "full"]:
        contents = {(w, p): ctx.tflite(name, w, p) for w in ("baseline", "deploy") for p in PRECISIONS
                    if not (w == "baseline" and p == "int8" and name in ("f_R", "decoder")
                            and not a.full_grid)}  # slow to calibrate; f_m and full show it
        contents = {k: v for k, v in contents.items() if v is not None}
        interps = [latency.interpreter(c, a.threads) for c in contents.values()]
        times = bench(interps, ctx.one(name), a.repeats, a.warmup, a.block)
        ref_scale = float(np.abs(ctx.reference[name]).max())
        base = np.median(times[0])
        rows = []
        for ((w, p), c), t in zip(contents.items(), times):
            size = len(c) / len(contents[(w, "float32")])
            fl = float_ops(c) if p == "int8" else {}
            rows.append([w, p, *pct(t), base / np.median(t), f"{len(c) / 1e6:.2f}", f"{size:.3f}",
                         "{:.2g} / {:.2g}".format(*ctx.diff(name, c)),
                         ", ".join(f"{k}×{v}" for k, v in sorted(fl.items())) or "—"])
        print(f"### {name}  (Keras output max |y| over the eval masks = {ref_scale:.3g})\n")
        table(["graph", "precision", "p50 ms", "p99 ms", "speed-up vs baseline float32", "MB",
               "size ÷ float32", "max / mean |Δ| vs Keras", "int8: ops left float32"], rows)
    slow = sorted(ctx.convert_seconds.items(), key=lambda kv: -kv[1])[:3]
    print("slowest conversions: " + ", ".join(f"{'/'.join(k)} {s:.0f} s" for k, s in slow) + "\n")


KINDS = [(GroupedConv2D, "conv"), (keras.layers.Conv2D, "conv"),
         (InstanceNormalization, "norm"), (keras.layers.LeakyReLU, "act"),
         (SpatialConditioning, "cond"), (keras.layers.UpSampling2D, "upsample"),
         (keras.layers.MaxPooling2D, "pool"), (keras.layers.Add, "add")]


def kind(layer):
    return next((k for cls, k in KINDS if isinstance(layer, cls)), "other")


def one_layer_model(layer, shapes):
    ins = [keras.Input(batch_shape=(1, *s)) for s in shapes]
    single = ins[0] if len(ins) == 1 else ins
    return keras.Model(single, layer(single))


def section_layers(ctx, a):
    print("## 3. Per-layer breakdown, float32 (each layer a one-layer model at its input shape)\n")
    entries, interps, inputs = [], [], []
    rng = np.random.default_rng(4)
    for sub in SUBMODELS:
        for layer, shapes in ctx.layer_shapes[sub]:
            xs = [rng.normal(size=(1, *s)).astype("float32") for s in shapes]
            for which, lay in (("baseline", layer), ("deploy", conv.grouped_conv_as_conv2d(layer))):
                if lay is None:
                    continue
                interps.append(latency.interpreter(to_tflite(one_layer_model(lay, shapes)), a.threads))
                inputs.append(xs)
                entries.append((sub, layer.name, kind(layer), which, shapes[0]))
        for which in ("baseline", "deploy"):  # the whole sub-model, for the sum check
            interps.append(latency.interpreter(ctx.tflite(sub, which, "float32"), a.threads))
            inputs.append(ctx.one(sub))
            entries.append((sub, "(whole)", "whole", which, None))
    # Fixed per-invoke cost (Python call + interpreter), included in every one-layer figure.
    i = keras.Input(batch_shape=(1, 1))
    interps.append(latency.interpreter(to_tflite(keras.Model(i, i + 1.0)), a.threads))
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

    for which in ("baseline", "deploy"):
        total = sum(v[which] for k, v in ms.items() if k[2] != "whole")
        top = sorted(((k, v) for k, v in ms.items() if k[2] != "whole"), key=lambda kv: -kv[1][which])[:a.top]
        print(f"{which.capitalize()} graph, top layers:\n")
        table(["sub-model", "layer", "kind", "input", f"{which} p50 ms", f"% of {which} sum"],
              [[k[0], k[1], k[2], "×".join(map(str, k[3])), v[which], f"{100 * v[which] / total:.1f}"]
               for k, v in top])


def section_threads(ctx, a):
    print("## 4. Threads — full model, 1 vs 2 threads (interleaved; the 2 cores are shared)\n")
    cases = [("baseline", "float32"), ("deploy", "float32"), ("deploy", "float16"), ("deploy", "int8")]
    interps, labels = [], []
    for w, p in cases:
        c = ctx.tflite("full", w, p)
        if c is None:
            continue
        for threads in (1, 2):
            interps.append(latency.interpreter(c, threads))
            labels.append((w, p, threads))
    times = bench(interps, ctx.one("full"), a.repeats, a.warmup, a.block)
    rows = []
    for i in range(0, len(labels), 2):
        (w, p, _), t1, t2 = labels[i], times[i], times[i + 1]
        rows.append([w, p, *pct(t1), *pct(t2), np.median(t1) / np.median(t2)])
    table(["graph", "precision", "1 thr p50", "1 thr p99", "2 thr p50", "2 thr p99", "speed-up p50"], rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=200, help="timed invokes per model")
    p.add_argument("--warmup", type=int, default=20, help="untimed invokes per model first")
    p.add_argument("--block", type=int, default=10,
                   help="consecutive invokes per model per round (1 = strict round-robin)")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads (section 4 uses 1 and 2)")
    p.add_argument("--calib", type=int, default=100, help="representative masks for int8")
    p.add_argument("--n-eval", type=int, default=16, help="masks for the max|Δ| vs Keras")
    p.add_argument("--top", type=int, default=12, help="rows in the top-layers tables")
    p.add_argument("--model", help="a trained CoDAE: run dir or .keras file (default: build_codae + perturbed weights)")
    p.add_argument("--full-grid", action="store_true", help="also baseline int8 of f_R and the decoder")
    p.add_argument("--sections", default=",".join(ALL_SECTIONS), help=f"comma list of {', '.join(ALL_SECTIONS)}")
    a = p.parse_args(argv)
    sections = a.sections.split(",")
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}")
    start = time.perf_counter()
    print(f"# LiteRT profile — {platform.processor() or platform.machine()}, {os.cpu_count()} cpus,"
          f" TF {tf.__version__}, Keras {keras.__version__}, {a.threads} thread(s),"
          f" {a.repeats} repeats after {a.warmup} warm-up\n")
    ctx = Context(a)
    print(f"[set-up: {time.perf_counter() - start:.0f} s]\n")
    for name in ALL_SECTIONS:
        if name in sections:
            t0 = time.perf_counter()
            globals()[f"section_{name}"](ctx, a)
            print(f"[section {name}: {time.perf_counter() - t0:.0f} s]\n", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
