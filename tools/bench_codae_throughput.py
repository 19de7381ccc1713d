"""Benchmark: CoDAE training throughput vs the tf.data pipeline's own throughput, side by side.

The pipeline must not be the bottleneck: it has to deliver images ≥ 5× faster than the model
consumes them in training. Measured in one run, so the ratio is meaningful on a shared machine:

* pipeline, cold — first pass over the file: HDF5 read + decompression + Algorithm 1 (+ cache fill)
* pipeline, warm — later epochs: from the cache, shuffle + augmentation + batching
* model — CoDAE (paper size) ``fit`` steps on in-memory batches (no input cost), compile excluded
* grouped conv — why tfphys has GroupedConv2D: a train step of Keras ``Conv2D(groups=g)`` vs ours
* levers — the model's fit steps per variant (float32, Keras ``mixed_bfloat16``, XLA
  ``jit_compile``, a larger batch, and the two layer rewrites tfphys adopted, undone: the
  instance norm's gradient by automatic differentiation, the conv bias as a broadcast add),
  timed round-robin (A B C A B C …) in one process so the
  ratios hold on a shared machine, and the training roofline: analytic FLOPs per image
  (2·MACs of every conv/dense, × 3 for forward + backward) × images/s against the CPU's peak

Usage: python tools/bench_codae_throughput.py [--events 1024] [--batch-size 128] [--steps 6]
       python tools/bench_codae_throughput.py --levers-only [--rounds 3] [--steps 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from tfphys.darkshowers import codae  # noqa: E402
from tfphys.darkshowers.codae import build_codae  # noqa: E402
from tfphys.darkshowers.generate import generate  # noqa: E402
from tfphys.darkshowers.losses import SummedBinaryCrossentropy  # noqa: E402
from tfphys.darkshowers.pipeline import autoencoder_datasets  # noqa: E402
from tfphys.layers import GroupedConv2D, InstanceNormalization  # noqa: E402
from tfphys.training import make_optimizer  # noqa: E402


def pipeline_rates(path, batch_size):
    train, _ = autoencoder_datasets(path, batch_size=batch_size, seed=0, val_fraction=0.1)
    rates = []
    for _ in range(2):  # epoch 1 fills the cache, epoch 2 reads it
        n, start = 0, time.perf_counter()
        for x, _ in train:
            n += int(x.shape[0])
        rates.append(n / (time.perf_counter() - start))
    return rates


class AutodiffInstanceNorm(InstanceNormalization):
    """Before: the instance norm's plain formula, differentiated automatically."""

    def call(self, x):
        centred = x - ops.mean(x, axis=(1, 2), keepdims=True)
        variance = ops.mean(centred * centred, axis=(1, 2), keepdims=True)
        return centred * ops.rsqrt(variance + self.epsilon) * self.gamma + self.beta


class BroadcastBiasConv(GroupedConv2D):
    """Before: the grouped conv's bias as a broadcast add (its gradient a generic Sum)."""

    def call(self, x):
        return self.convolve(x) + self.bias


def compiled_codae(batch_size, policy="float32", jit_compile=False, before=()):
    """The paper-size CoDAE compiled as tfphys trains it, and a repeating in-memory batch.

    ``before``: layer rewrites to undo — ``"norm"`` (autodiff instance norm), ``"bias"``
    (broadcast-add bias) — by building with the earlier layers in ``tfphys.darkshowers.codae``.
    """
    keras.utils.set_random_seed(0)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    layers = codae.InstanceNormalization, codae.GroupedConv2D
    if "norm" in before:
        codae.InstanceNormalization = AutodiffInstanceNorm
    if "bias" in before:
        codae.GroupedConv2D = BroadcastBiasConv
    try:
        model = build_codae()
    finally:
        keras.config.set_dtype_policy(previous)
        codae.InstanceNormalization, codae.GroupedConv2D = layers
    model.compile(optimizer=make_optimizer({"optimizer": {
        "class_name": "AdamW", "learning_rate": 1e-3, "weight_decay": 0.1, "clipnorm": 1.0}}),
        loss=SummedBinaryCrossentropy(), jit_compile=jit_compile)  # the loss computes in float32
    x = (np.random.default_rng(0).random((batch_size, 72, 58, 1)) < 0.05).astype(np.float32)
    ds = tf.data.Dataset.from_tensors((x, x)).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # trace + compile
    return model, ds


def timed_fit(model, ds, batch_size, steps):
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


LEVERS = {  # name: (batch size factor, dtype policy, jit_compile, rewrites undone)
    "float32": (1, "float32", False, ()),
    "mixed_bfloat16": (1, "mixed_bfloat16", False, ()),
    "float32, jit_compile (XLA)": (1, "float32", True, ()),
    "mixed_bfloat16, jit_compile": (1, "mixed_bfloat16", True, ()),
    "float32, batch ×2": (2, "float32", False, ()),
    "before: autodiff norm": (1, "float32", False, ("norm",)),
    "before: autodiff norm, add bias": (1, "float32", False, ("norm", "bias")),
}


def lever_rates(batch_size, steps, rounds, names):
    """images/s per lever: every variant compiled first, then timed round-robin ``rounds`` times;
    a variant that cannot be compiled is left out, with why (``failed``)."""
    variants, failed = {}, {}
    for name in names:
        factor, policy, jit, before = LEVERS[name]
        b = batch_size * factor
        try:
            variants[name] = (b, *compiled_codae(b, policy, jit, before))
        except Exception as error:  # noqa: BLE001 — a lever that does not compile is a result too
            failed[name] = " ".join(str(error).split())[:160]
    rates = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (b, model, ds) in variants.items():
            rates[name].append(timed_fit(model, ds, b, steps))
    return rates, failed


def codae_forward_flops():
    """Forward FLOPs per image (2 · multiply-adds) of every conv and dense layer of the CoDAE.

    Counted from each layer's kernel and output shape; norms, activations, pooling, upsampling
    and the conditioning's element-wise products are left out (they are memory-bound, < 2 %).
    """
    total = 0

    def walk(model):
        nonlocal total
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                walk(layer)
            elif isinstance(layer, (GroupedConv2D, keras.layers.Conv2D, keras.layers.Dense)):
                out = layer.output.shape[1:-1]  # spatial positions (empty for Dense)
                total += 2 * int(np.prod(layer.kernel.shape)) * int(np.prod(out))
            elif getattr(layer, "_layers", None):  # e.g. SpatialConditioning's own convs
                for sub in layer._layers:
                    if hasattr(sub, "kernel") and hasattr(layer, "output"):
                        out = layer.output.shape[1:-1]
                        total += 2 * int(np.prod(sub.kernel.shape)) * int(np.prod(out))

    walk(build_codae())
    return total


def cpu_peak_flops():
    """(cores, GHz, fp32 FLOP/s, bf16 AVX-512 FLOP/s, bf16 AMX FLOP/s), from /proc/cpuinfo.

    Assumes two AVX-512 FMA ports per core (Xeon Gold/Platinum): fp32 16 lanes × 2 × 2 = 64
    FLOP/cycle, AVX512-BF16 ``vdpbf16ps`` 128 FLOP/cycle; AMX-BF16 TMUL 1024 FLOP/cycle. The clock
    is the nominal ``cpu MHz`` (a VM's; turbo not counted).
    """
    text = Path("/proc/cpuinfo").read_text()
    mhz = float(next(ln.split(":")[1] for ln in text.splitlines() if ln.startswith("cpu MHz")))
    cores = os.cpu_count()
    hz = cores * mhz * 1e6
    return cores, mhz / 1e3, 64 * hz, 128 * hz, 1024 * hz


def grouped_conv_ratio(repeats=5):
    rows = []
    for shape, filters in [((32, 36, 29, 64), 64), ((32, 18, 15, 128), 128), ((32, 10, 8, 256), 256)]:
        x = tf.random.stateless_normal(shape, seed=(0, 1))
        times = []
        for layer in (keras.layers.Conv2D(filters, 3, padding="same", groups=4),
                      GroupedConv2D(filters, 3, groups=4)):
            layer.build(shape)

            @tf.function
            def step(x, layer=layer):
                with tf.GradientTape() as tape:
                    y = tf.reduce_sum(layer(x) ** 2)
                return tape.gradient(y, layer.trainable_variables)

            step(x)
            start = time.perf_counter()
            for _ in range(repeats):
                step(x)
            times.append((time.perf_counter() - start) / repeats)
        rows.append((shape, *times))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1024, help="QCD events in the file")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--data", help="use this file instead of generating one")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin passes over the levers")
    parser.add_argument("--levers-only", action="store_true", help="skip pipeline and grouped conv")
    parser.add_argument("--levers", nargs="*", default=[n for n in LEVERS if n != "float32"],
                        choices=[n for n in LEVERS if n != "float32"], metavar="LEVER",
                        help="levers timed beside float32 (default: all the others)")
    args = parser.parse_args()
    float32 = levers(args)
    if not args.levers_only:
        print()
        pipeline_and_grouped_conv(args, float32)


def levers(args) -> float:
    """Print the levers' table; return float32's images/s (the model row of the pipeline table)."""
    flops = 3 * codae_forward_flops()  # forward + backward (input and weight gradients)
    cores, ghz, fp32, bf16, amx = cpu_peak_flops()
    rates, failed = lever_rates(args.batch_size, args.steps, args.rounds, ["float32", *args.levers])
    base = float(np.median(rates["float32"]))
    print(f"training FLOPs per image: {flops / 1e9:.2f} GFLOP (3 × forward, analytic); "
          f"peak {cores} cores × {ghz:.2f} GHz: fp32 {fp32 / 1e9:.0f}, AVX512-BF16 "
          f"{bf16 / 1e9:.0f}, AMX-BF16 {amx / 1e9:.0f} GFLOP/s; load {os.getloadavg()[0]:.1f}")
    print(f"{'lever (batch)':<36}{'images/s (median; rounds)':>34}{'÷ fp32':>8}{'GFLOP/s':>9}"
          f"{'% fp32 peak':>12}")
    for name, r in rates.items():
        med = float(np.median(r))
        b = args.batch_size * LEVERS[name][0]
        rounds = ", ".join(f"{v:.1f}" for v in r)
        print(f"{f'{name} ({b})':<36}{f'{med:.1f}; {rounds}':>34}{med / base:8.2f}"
              f"{med * flops / 1e9:9.1f}{100 * med * flops / fp32:11.1f}%")
    for name, why in failed.items():
        print(f"{name}: does not compile — {why}")
    return base


def pipeline_and_grouped_conv(args, model_rate):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.data) if args.data else Path(tmp) / "qcd.h5"
        if not args.data:
            generate("qcd", args.events, path, seed=1, progress=False)
        cold, warm = pipeline_rates(path, args.batch_size)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, batch {args.batch_size}, {args.events} events")
    print(f"{'what':<34}{'images/s':>10}{'÷ model':>9}")
    print(f"{'CoDAE training (fit, paper size)':<34}{model_rate:10.1f}{1:9.1f}")
    print(f"{'pipeline, cold (HDF5+Alg.1)':<34}{cold:10.1f}{cold / model_rate:9.1f}")
    print(f"{'pipeline, warm (cache+augment)':<34}{warm:10.1f}{warm / model_rate:9.1f}")
    print()
    print(f"{'train step of a grouped conv (g=4)':<36}{'Conv2D':>9}{'ours':>9}{'speed-up':>9}")
    for shape, keras_s, ours_s in grouped_conv_ratio():
        print(f"{str(shape):<36}{keras_s * 1e3:7.1f}ms{ours_s * 1e3:7.1f}ms{keras_s / ours_s:8.1f}×")


if __name__ == "__main__":
    main()
