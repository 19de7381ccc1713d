"""Can the ALBUS U-Net fit at all? A small, fast overfit study on a few paper-size maps.

Trains the paper-width U-Net (``models/albus.toml`` [model], overridable) on ``--maps`` chirp maps
of visibility ≥ ``--min-level`` and as many background maps, in batches of half background, half
chirps, for ``--steps`` Adam updates, and prints, every ``--every`` steps, the training loss and
three localisation diagnostics on those same maps:

* ``on − off``: the mean output on target pixels (target > 0) minus the mean output elsewhere
  (0 = the network ignores the chirp; > 0 = the output lights up along it; a difference, not a
  ratio, because a linear output's off-track mean sits near 0 of either sign);
* ``corr``: Pearson correlation of output and target over the chirp maps' pixels;
* ``Δ sum``: the median ``map_sum`` detection statistic of the chirp maps minus that of the
  background maps (inference mode, i.e. BatchNorm moving statistics).

    python tools/albus_fit_study.py --data FILE --steps 40 --activation linear --output-bias 0

It is the experiment behind the ALBUS training notes in tools/README.md: which of learning rate,
BatchNorm momentum, target normalisation and output bias make the difference between the
constant (all-zero) output and a map that follows the chirp.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="ALBUS HDF5 file (tfphys-data albus)")
    p.add_argument("--maps", type=int, default=4, help="chirp maps (and as many background maps)")
    p.add_argument("--min-level", type=float, default=40.0, help="smallest visibility of the chirps")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--batch", type=int, default=4, help="maps per update (half background)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--bn-momentum", type=float, default=0.9)
    p.add_argument("--output-bias", type=float, default=-3.0)
    p.add_argument("--activation", choices=("sigmoid", "linear"), default="sigmoid",
                   help="output activation of the U-Net")
    p.add_argument("--target", choices=("raw", "max"), default="max",
                   help="stored target (raw) or divided by its map's maximum (max)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    from tfphys import config as configs
    from tfphys.albus import storage
    from tfphys.albus.evaluate import map_sum
    from tfphys.albus.model import build_albus
    from tfphys.albus.pipeline import normalise_targets, read_maps

    keras.utils.set_random_seed(args.seed)
    with storage.open_albus(args.data) as f:
        kind, level = f["kind"][:], f["visibility"][:]
    rng = np.random.default_rng(args.seed)
    chirps = rng.permutation(np.flatnonzero((kind == 1) & (level >= args.min_level)))[: args.maps]
    backs = rng.permutation(np.flatnonzero(kind == 0))[: len(chirps)]
    x, y = read_maps(args.data, np.concatenate([backs, chirps]))
    if args.target == "max":
        y = normalise_targets(y).numpy()
    n = len(backs)
    print(f"{n} background + {n} chirp maps (V = {sorted(level[chirps].tolist())}); target pixels per "
          f"chirp map {np.mean([(y[i] > 0).sum() for i in range(n, 2 * n)]):.0f}, max "
          f"{np.mean([y[i].max() for i in range(n, 2 * n)]):.2f}, mean target² "
          f"{np.mean(y[n:] ** 2):.2e}")

    cfg = configs.load(configs.default_config_path("albus"))["model"]
    cfg.update(output_bias=args.output_bias, bn_momentum=args.bn_momentum,
               output_activation=args.activation)
    model = build_albus(**cfg)
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="mse")
    half = args.batch // 2
    ds = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices((x[:n], y[:n])).shuffle(n, seed=1).repeat().batch(half),
        tf.data.Dataset.from_tensor_slices((x[n:], y[n:])).shuffle(n, seed=2).repeat().batch(half),
    ).map(lambda b, c: (tf.concat([b[0], c[0]], 0), tf.concat([b[1], c[1]], 0)))

    def report(step, loss, t0):
        o = model.predict(x, batch_size=4, verbose=0)
        tc, oc = y[n:, ..., 0], o[n:, ..., 0]
        on, off = oc[tc > 0].mean(), oc[tc == 0].mean()
        corr = np.corrcoef(oc.ravel(), tc.ravel())[0, 1]
        s = map_sum(None, o)
        print(f"| {step:5d} | {loss:.3e} | {on - off:8.4f} | {corr:6.3f} | "
              f"{np.median(s[n:]) - np.median(s[:n]):8.2f} | {time.time() - t0:6.0f} |", flush=True)

    print("| step | train loss | on − off | corr | Δ sum | s |\n|---|---|---|---|---|---|")
    t0 = time.time()
    report(0, float(model.evaluate(x, y, batch_size=4, verbose=0)), t0)
    it = iter(ds)
    losses = []
    for step in range(1, args.steps + 1):
        xb, yb = next(it)
        losses.append(float(model.train_on_batch(xb, yb)))
        if step % args.every == 0 or step == args.steps:
            report(step, float(np.mean(losses[-args.every:])), t0)


if __name__ == "__main__":
    main()
