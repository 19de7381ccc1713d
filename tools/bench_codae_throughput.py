"""Benchmark: CoDAE training throughput vs the tf.data pipeline's own throughput, side by side.

The pipeline must not be the bottleneck: it has to deliver images ≥ 5× faster than the model
consumes them in training. Measured in one run, so the ratio is meaningful on a shared machine:

* pipeline, cold — first pass over the file: HDF5 read + decompression + Algorithm 1 (+ cache fill)
* pipeline, warm — later epochs: from the cache, shuffle + augmentation + batching
* model — CoDAE (paper size) ``fit`` steps on in-memory batches (no input cost), compile excluded
* grouped conv — why tfphys has GroupedConv2D: a train step of Keras ``Conv2D(groups=g)`` vs ours

Usage: python tools/bench_codae_throughput.py [--events 1024] [--batch-size 128] [--steps 6]
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

from tfphys.darkshowers.codae import build_codae  # noqa: E402
from tfphys.darkshowers.generate import generate  # noqa: E402
from tfphys.darkshowers.losses import SummedBinaryCrossentropy  # noqa: E402
from tfphys.darkshowers.pipeline import autoencoder_datasets  # noqa: E402
from tfphys.layers import GroupedConv2D  # noqa: E402
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


def model_rate(batch_size, steps):
    keras.utils.set_random_seed(0)
    model = build_codae()
    model.compile(optimizer=make_optimizer({"optimizer": {
        "class_name": "AdamW", "learning_rate": 1e-3, "weight_decay": 0.1, "clipnorm": 1.0}}),
        loss=SummedBinaryCrossentropy())
    x = (np.random.default_rng(0).random((batch_size, 72, 58, 1)) < 0.05).astype(np.float32)
    ds = tf.data.Dataset.from_tensors((x, x)).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # trace + compile
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch_size / (time.perf_counter() - start)


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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.data) if args.data else Path(tmp) / "qcd.h5"
        if not args.data:
            generate("qcd", args.events, path, seed=1, progress=False)
        cold, warm = pipeline_rates(path, args.batch_size)
    model = model_rate(args.batch_size, args.steps)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, batch {args.batch_size}, {args.events} events")
    print(f"{'what':<34}{'images/s':>10}{'÷ model':>9}")
    print(f"{'CoDAE training (fit, paper size)':<34}{model:10.1f}{1:9.1f}")
    print(f"{'pipeline, cold (HDF5+Alg.1)':<34}{cold:10.1f}{cold / model:9.1f}")
    print(f"{'pipeline, warm (cache+augment)':<34}{warm:10.1f}{warm / model:9.1f}")
    print()
    print(f"{'train step of a grouped conv (g=4)':<36}{'Conv2D':>9}{'ours':>9}{'speed-up':>9}")
    for shape, keras_s, ours_s in grouped_conv_ratio():
        print(f"{str(shape):<36}{keras_s * 1e3:7.1f}ms{ours_s * 1e3:7.1f}ms{keras_s / ours_s:8.1f}×")


if __name__ == "__main__":
    main()
