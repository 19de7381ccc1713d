"""The idle time between Keras epochs that tf.data's autotuning costs under TF 2.21, and what
``tfphys.datasets.disable_autotune`` (applied by the trainer to every family's datasets) saves.

    python tools/bench_epoch_gap.py                  # 3 epochs of ~30 s each, autotune on, then off
    python tools/bench_epoch_gap.py --steps 300      # shorter epochs: a shorter stall

The same small Keras model (Dense 512 → 4 × 1024 → 512, batch 32) trains on the same in-memory
pipeline (shuffle → batch → prefetch(AUTOTUNE)) twice: with tf.data's autotuning (the default) and
without it. Printed per run: the epochs' wall times (first batch to last); the gaps between one
epoch's end and the next epoch's first batch, where Keras drops the old iterator, and the CPU time
spent in them; the time from the last epoch's end to fit() returning, where the last iterator is
dropped. Nothing is computed in a gap, so a gap is idle time, whatever else the machine does.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def epoch_watch():
    """``(callback, marks)``: a Keras callback that records in ``marks`` each epoch's wall time (its
    first batch to its end, ``"epochs"``), each gap from one epoch's end to the next epoch's first
    batch, where ``fit`` drops the old iterator and makes a new one (``"gaps"``), the process CPU
    time spent in each gap (``"gap_cpu"``), and the last epoch's end (``"end"``: wall, CPU)."""
    import keras

    marks = {"epochs": [], "gaps": [], "gap_cpu": []}

    def epoch_end(epoch, logs=None):
        marks["end"] = (time.perf_counter(), time.process_time())
        marks["epochs"].append(marks["end"][0] - marks.pop("first"))

    def batch_begin(batch, logs=None):
        if batch == 0:
            marks["first"] = time.perf_counter()
            if "end" in marks:
                wall, cpu = marks.pop("end")
                marks["gaps"].append(marks["first"] - wall)
                marks["gap_cpu"].append(time.process_time() - cpu)

    return keras.callbacks.LambdaCallback(on_epoch_end=epoch_end, on_train_batch_begin=batch_begin), marks


def run(autotune: bool, steps: int, epochs: int, seed: int = 0) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from tfphys.datasets import disable_autotune

    x = np.random.default_rng(seed).uniform(size=(32 * steps, 512)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, x)).shuffle(len(x), seed=seed).batch(32).prefetch(tf.data.AUTOTUNE)
    if not autotune:
        ds = disable_autotune(ds)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((512,))
    h = inputs
    for _ in range(4):
        h = keras.layers.Dense(1024, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(512)(h))
    model.compile(optimizer="adam", loss="mse")

    watch, marks = epoch_watch()
    start = time.perf_counter()
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[watch], shuffle=False)
    marks["total"] = time.perf_counter() - start
    marks["after"] = time.perf_counter() - marks.pop("end")[0]   # fit() drops the last iterator too
    return marks


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="steps per epoch (default 1000: ~30 s here)")
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args(argv)
    if args.steps <= 0 or args.epochs < 2:
        p.error("--steps must be positive and --epochs at least 2 (a gap needs two epochs)")

    from tfphys.cli import _import_tensorflow_quietly

    _import_tensorflow_quietly()
    import tensorflow as tf

    load = os.getloadavg()[0]
    on, off = run(True, args.steps, args.epochs), run(False, args.steps, args.epochs)
    print(f"\nepoch gap benchmark — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TF {tf.__version__}; {args.epochs} epochs × {args.steps} steps; 1-min load average {load:.1f} "
          f"before, {os.getloadavg()[0]:.1f} after")
    print()
    print("| tf.data autotune | epochs (s) | gaps between epochs (s) | CPU in the gaps (s) | last epoch → fit() "
          "returns (s) | total (s) |")
    print("|---|---|---|---|---|---|")
    for name, m in (("on (TF default)", on), ("off (`disable_autotune`, the trainer)", off)):
        print(f"| {name} | {' / '.join(f'{t:.1f}' for t in m['epochs'])} | "
              f"{' / '.join(f'{t:.1f}' for t in m['gaps'])} | {' / '.join(f'{t:.1f}' for t in m['gap_cpu'])} | "
              f"{m['after']:.1f} | {m['total']:.1f} |")
    print(f"\noff / on, total wall time: {off['total'] / on['total']:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
