"""Benchmark: the three trainable baselines of the CoDAE paper §5.2 side by side (AE, Dirichlet VAE,
CCT) at the paper's sizes — parameters, training throughput, LiteRT latency — and, with
``--epochs``, a short training of each through the one trainer on its default data followed by the
AUROC of its anomaly score on the default labelled sample (QCD vs all SUEP/SVJ mass points).

* training throughput: ``model.fit`` steps at batch 128 on in-memory masks (no input cost),
  tracing excluded
* LiteRT: float32, builtin ops only, batch 1, 1 thread (the HLT setting), p50 of ``--iterations``
* AUROC: ``spec.anomaly_score`` of the best checkpoint (ae: SSE, dirvae: cross-entropy of the
  normalised image, cct: 1 − p(QCD)) on ``--eval-n`` QCD and as many signal events

Usage: python tools/bench_baselines.py [--models ae,dirvae,cct] [--steps 4] [--iterations 100]
                                       [--epochs 0 | --epochs ae=5,dirvae=5,cct=2] [--eval-n 500]
                                       [--default-n cct=200]
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
from sklearn.metrics import roc_auc_score  # noqa: E402

from export.convert import convert  # noqa: E402
from export.latency import interpreter, summary, time_tflite  # noqa: E402
from tfphys import config as configs  # noqa: E402
from tfphys import (
    registry,  # noqa: E402
    training,  # noqa: E402
)


def _masks(n, seed=0):
    return (np.random.default_rng(seed).random((n, 72, 58, 1)) < 0.05).astype(np.float32)


def _targets(name, x):
    if name == "cct":
        return np.tile(np.eye(3, dtype=np.float32)[:1], (len(x), 1))
    return x


def throughput(name, cfg, batch_size, steps):
    spec = registry.get(name)
    keras.utils.set_random_seed(0)
    model = registry.build(spec, dict(cfg["model"]))
    model.compile(optimizer=training.make_optimizer(cfg["train"]), loss=spec.loss())
    x = _masks(batch_size)
    ds = tf.data.Dataset.from_tensors((x, _targets(name, x))).repeat()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)  # trace + compile
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return model, steps * batch_size / (time.perf_counter() - start)


def latency(model, runs):
    interp = interpreter(convert(model, "float32"), 1)
    return summary(time_tflite(interp, [_masks(1, seed=1)], runs=runs, warmup=10))["p50"]


def train_and_score(name, cfg, epochs, eval_n, out_root):
    spec = registry.get(name)
    cfg = configs.override(cfg, "train", "epochs", epochs)
    start = time.perf_counter()
    result = training.train(name, cfg, out_root / name, verbose=0)
    minutes = (time.perf_counter() - start) / 60
    model = keras.saving.load_model(result.model_path, safe_mode=True)
    saved = configs.load(out_root / name / "config.toml")
    x, is_signal = spec.labelled_sample(saved, None, eval_n, 0)
    auroc = roc_auc_score(is_signal, spec.anomaly_score(x, model.predict(x, batch_size=128, verbose=0)))
    if name == "dirvae":  # Dillon et al.'s latent scores Z_k (the paper's Table 1 uses Z_2)
        from tfphys.darkshowers.baselines import dirvae_latent

        z = dirvae_latent(model, x)
        print("dirvae latent AUROC " + ", ".join(
            f"Z_{k + 1} {roc_auc_score(is_signal, z[:, k]):.4f}" for k in range(z.shape[1])), flush=True)
    best = [row[spec.monitor] for row in result.history]
    return auroc, (max(best) if spec.mode == "max" else min(best)), spec.monitor, minutes


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="ae,dirvae,cct")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--iterations", type=int, default=100, help="timed invocations")
    p.add_argument("--epochs", default="0", help="N for all, or ae=5,dirvae=5,cct=2; 0: no training")
    p.add_argument("--eval-n", type=int, default=500)
    p.add_argument("--default-n", default="", help="e.g. cct=200: a smaller default training file")
    args = p.parse_args()
    default_n = {k: int(v) for k, v in (item.split("=") for item in args.default_n.split(",") if item)}
    names = args.models.split(",")
    if "=" in args.epochs:
        epochs = {k: int(v) for k, v in (item.split("=") for item in args.epochs.split(","))}
    else:
        epochs = dict.fromkeys(names, int(args.epochs))

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
          f"Keras {keras.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cfg = configs.load(configs.default_config_path(name))
            if name in default_n:
                cfg["data"]["default_n"] = default_n[name]
            model, rate = throughput(name, cfg, args.batch_size, args.steps)
            row = [name, f"{model.count_params():,}", f"{rate:.1f}", f"{latency(model, args.iterations):.2f}"]
            if epochs.get(name, 0) > 0:
                auroc, best, monitor, minutes = train_and_score(name, cfg, epochs[name], args.eval_n, Path(tmp))
                row += [str(epochs[name]), f"{minutes:.1f}", f"{monitor} {best:.4g}", f"{auroc:.4f}"]
            rows.append(row)
            print(" | ".join(row), flush=True)

    header = ["model", "parameters", "train images/s (batch 128)", "LiteRT f32 p50 ms"]
    if any(len(r) > 4 for r in rows):
        header += ["epochs", "train min", "best val", "AUROC (score)"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r + [""] * (len(header) - len(r))) + " |")


if __name__ == "__main__":
    main()
