"""Benchmark: sharded scoring (``tfphys-score``) with 1 and 2 processes on this machine, side by side.

Each configuration scores the same file end to end — process start-up (TensorFlow import, model
load) included, as a user would see it — then ``tfphys-score merge`` checks that every event was
scored exactly once. Rows:

* 1 process × all cores (TensorFlow's own intra-op threads)
* 1 process × 1 thread (the unit a shard costs)
* P processes × cores/P threads each, ``--shard i/P`` (the cluster recipe, on one machine)

Beside them, the target of issue 20: the exported model's own rate — the model converted as
``tfphys-export`` converts it (``--precision``, default float16), timed batch-1 on one LiteRT thread
as the export's report times it (p50 ms per event) — times the cores; each row's ratio is that rate
over the row's events/s (issue 20 asks ≤ 1.5×).

Usage: python tools/bench_scoring.py [RUN] [--data FILE] [--events 2000] [--processes 2] [--repeats 2]
                                    [--precision float16]
RUN defaults to runs/codae if it exists, else an untrained paper-size CoDAE (same cost per event);
--data defaults to the cached 2000-event toy QCD file.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _untrained_run(model_name: str, where: Path) -> Path:
    from tfphys import config as configs
    from tfphys import registry

    cfg = configs.load(configs.default_config_path(model_name))
    cfg["model_name"] = model_name
    run = where / f"untrained-{model_name}"
    run.mkdir(parents=True, exist_ok=True)
    registry.build(registry.get(model_name), dict(cfg["model"])).save(run / "model.keras")
    configs.save(cfg, run / "config.toml")
    return run


def _export_rate(run: Path, data: Path, precision: str) -> tuple[float, float]:
    """(p50 ms per event, events/s on one core) of ``run``'s model exported at ``precision``,
    timed as ``tfphys-export`` times it: batch 1, one LiteRT thread, 200 invocations after 20."""
    import numpy as np

    from export import convert, latency
    from tfphys import rundir
    from tfphys.darkshowers import pipeline

    model = rundir.open_run(run).load_model()
    x = pipeline.load_masks(data, np.arange(1))
    interp = latency.interpreter(convert.convert(convert.for_deployment(model), precision))
    p50 = latency.summary(latency.time_tflite(interp, [x]))["p50"]
    return p50, 1000.0 / p50


def _score(run, data, out, processes, threads):
    """Start ``processes`` shards at once; wall time until the last one finished."""
    code = "import sys; from tfphys.cli import score_main; sys.exit(score_main(sys.argv[1:]))"
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, "shard", str(run), "--data", str(data), "--out", str(out),
                               "--shard", f"{i}/{processes}", "--threads", str(threads)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"shard failed:\n{err[-2000:]}")
    wall = time.perf_counter() - start
    merged = subprocess.run([sys.executable, "-c", code, "merge", str(out)], capture_output=True, text=True)
    if merged.returncode:
        sys.exit(f"merge failed: {merged.stderr}")
    return wall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", help="tfphys-train run dir (default: runs/codae or an untrained CoDAE)")
    p.add_argument("--data", help="file to score (default: the cached toy QCD file, --events events)")
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the fastest is reported")
    p.add_argument("--precision", default="float16", help="the export's precision timed for the target row")
    args = p.parse_args()

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data:
            data = Path(args.data)
        else:
            from tfphys.darkshowers.generate import default_dataset

            data = default_dataset("qcd", args.events, 20240902)
        run = Path(args.run) if args.run else (Path("runs/codae") if Path("runs/codae/model.keras").exists()
                                               else _untrained_run("codae", tmp))
        import h5py

        with h5py.File(data, "r") as f:
            n = len(f["label"] if "label" in f else f["kind"])
        setups = [(1, cores), (1, 1), (args.processes, max(1, cores // args.processes))]
        walls = {s: [] for s in setups}
        # Interleaved repeats (A B C A B C …): on a shared machine every configuration meets
        # similar competition; the fastest repeat of each is reported.
        for r in range(args.repeats):
            for processes, threads in setups:
                wall = _score(run, data, tmp / f"r{r}p{processes}t{threads}", processes, threads)
                walls[(processes, threads)].append(wall)
                print(f"  {processes} process(es) × {threads} thread(s): {wall:.1f} s", file=sys.stderr)
        rows = [(processes, threads, min(walls[(processes, threads)])) for processes, threads in setups]
        p50, per_core = _export_rate(run, data, args.precision)
    load = os.getloadavg()
    base = rows[0][2]
    print(f"Sharded scoring of {n} events of {data.name} with {run} — {platform.processor() or platform.machine()}, "
          f"{cores} cores, load average before/after {load_before:.2f}/{load[0]:.2f}")
    print()
    target = per_core * cores
    print(f"| processes × threads | wall (s, start-up included; best of {args.repeats}) | events/s | "
          f"speed-up vs 1 × all cores | export rate × {cores} cores / events/s |")
    print("|---|---|---|---|---|")
    print(f"| exported {args.precision} model alone (LiteRT, batch 1, p50 {p50:.2f} ms) × {cores} cores | – | "
          f"{target:.0f} | – | 1.00× |")
    for processes, threads, wall in rows:
        print(f"| {processes} × {threads} | {wall:.1f} | {n / wall:.0f} | {base / wall:.2f}× | "
              f"{target / (n / wall):.2f}× |")
    print()
    print("Every configuration's shards were merged and checked: each event scored exactly once.")


if __name__ == "__main__":
    main()
