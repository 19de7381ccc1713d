"""Per-map latency of the ALBUS chain on ONE core: noise → coherence map → RGB → U-Net inference.

The issue's budget: a 1000 s H1–L1 map (166 × 1025) from noise to localisation map in ≤ 1 s on
one core. Stages timed separately (median and p90 of --repeats runs), side by side, with the
inference by Keras (compiled ``tf.function``) and by LiteRT float32 (1 thread, builtin ops):

    python tools/bench_albus.py [--repeats 10] [--psd auto|O3|analytic] [--no-litert]

The U-Net has the paper's widths (untrained weights: the latency does not depend on them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # one core, before numpy starts its pools
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def _stats(times):
    t = np.asarray(times) * 1e3
    return float(np.median(t)), float(np.percentile(t, 90))


class _Clock:
    """Wall-clock and process CPU time of a block. On a shared, oversubscribed machine the CPU time
    of a one-thread process is what one *free* core would take; the wall time includes waiting."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--psd", default="auto", choices=("auto", "O3", "analytic"))
    p.add_argument("--no-litert", dest="litert", action="store_false")
    args = p.parse_args(argv)

    from tfphys.albus import coherence, noise, storage

    psd = noise.resolve_psd_model(args.psd)
    rng = np.random.default_rng(0)
    noise.detector_noise(1000.0, rng, model=psd)  # warm-up: PSD cache, FFT plans
    stages = ("noise (H1+L1, 2×1000 s)", "coherence map (Eq. 1)", "normalise + RGB")
    wall = {k: [] for k in stages}
    cpu = {k: [] for k in stages}
    maps = []
    for _ in range(args.repeats):
        with _Clock() as c0:
            h1, l1 = noise.detector_noise(1000.0, rng, model=psd)
        with _Clock() as c1:
            raw = coherence.coherence_map(h1, l1)
        with _Clock() as c2:
            rgb = storage.encode_map(raw)
        for key, c in zip(stages, (c0, c1, c2)):
            wall[key].append(c.wall)
            cpu[key].append(c.cpu)
        maps.append(rgb.astype(np.float32)[None] / 255.0)

    from tfphys.cli import _import_tensorflow_quietly

    _import_tensorflow_quietly(threads=1)
    import tensorflow as tf

    from tfphys.albus.model import build_albus

    model = build_albus()
    forward = tf.function(lambda x: model(x, training=False))
    forward(maps[0])
    def timed(fn):
        w, c = [], []
        for x in maps:
            with _Clock() as clock:
                fn(x)
            w.append(clock.wall)
            c.append(clock.cpu)
        return w, c

    infer = {"U-Net, Keras tf.function": timed(lambda x: forward(x).numpy())}
    if args.litert:
        from export.convert import convert
        from export.latency import interpreter, run_tflite
        from tfphys.console import quiet

        with quiet():
            interp = interpreter(convert(model, "float32"), threads=1)
        run_tflite(interp, [maps[0]])
        infer["U-Net, LiteRT float32"] = timed(lambda x: run_tflite(interp, [x]))

    print(f"ALBUS per 1000 s map, one core, {args.repeats} repeats, PSD {psd}, "
          f"{model.count_params() / 1e6:.2f} M parameters, load average {os.getloadavg()[0]:.1f}")
    print(f"{'stage':<30} {'CPU ms':>8} {'wall ms':>8} {'wall p90':>9}")
    data_cpu = data_wall = 0.0
    for key in stages:
        med, p90 = _stats(wall[key])
        data_cpu += _stats(cpu[key])[0]
        data_wall += med
        print(f"{key:<30} {_stats(cpu[key])[0]:8.1f} {med:8.1f} {p90:9.1f}")
    for key, (w, c) in infer.items():
        med, p90 = _stats(w)
        print(f"{key:<30} {_stats(c)[0]:8.1f} {med:8.1f} {p90:9.1f}")
    print("total per map (data + inference), medians:")
    for key, (w, c) in infer.items():
        total_cpu, total_wall = data_cpu + _stats(c)[0], data_wall + _stats(w)[0]
        verdict = "within" if total_cpu <= 1000 else "OVER"
        print(f"  with {key:<26} CPU {total_cpu:7.1f} ms, wall {total_wall:7.1f} ms → {verdict} the 1 s "
              f"budget (CPU time = one free core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
