"""Benchmark: sharded scoring (``tfphys-score``) with the Keras and the LiteRT runtime, 1 and 2 processes.

Each configuration scores the same file end to end — process start-up (TensorFlow import, model
load) included, as a user would see it — then ``tfphys-score merge`` checks that every event was
scored exactly once. Rows (runtime, processes × threads), interleaved in one run:

* keras 1 × all cores (TensorFlow's own intra-op threads), keras P × 1 (``--shard i/P``)
* litert float32 1 × 1 and P × 1, litert float16 P × 1 (``--runtime litert [--precision float16]``:
  the run's ``tfphys-export`` files, one single-thread LiteRT interpreter per process)

Beside them, the target of issue 20: the exported model's own rate — the run's exported
``model_<precision>.tflite`` (or the model converted as ``tfphys-export`` converts it, if the run
has none), timed batch-1 on one LiteRT thread as the export's report times it (p50 ms per event) —
times the cores; each row's ratio is that rate over the row's events/s (issue 20 asks ≤ 1.5×).

Usage: python tools/bench_scoring.py [RUN] [--data FILE] [--events 2000] [--processes 2] [--repeats 2]
                                    [--precision float16] [--rows keras:1x2,keras:2x1,...]
RUN defaults to runs/codae if it exists, else an untrained paper-size CoDAE (same cost per event);
the litert rows need RUN exported (``tfphys-export RUN``; the untrained CoDAE's files are written
here). --data defaults to the cached toy QCD file of --events events.
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


def _write_exported(run: Path) -> None:
    """The float32 and float16 files of ``tfphys-export`` for the model and its nested models
    (converted as the exporter converts them), for the untrained CoDAE made here."""
    from export import convert
    from tfphys import rundir

    model = rundir.open_run(run).load_model()
    for name, part in {"model": model, **convert.submodels(model)}.items():
        deploy = convert.for_deployment(part)
        for precision in ("float32", "float16"):
            (run / f"{name}_{precision}.tflite").write_bytes(convert.convert(deploy, precision))


def _export_rate(run: Path, data: Path, precision: str) -> tuple[float, float]:
    """(p50 ms per event, events/s on one core) of ``run``'s model exported at ``precision``,
    timed as ``tfphys-export`` times it: batch 1, one LiteRT thread, 200 invocations after 20."""
    import numpy as np

    from export import convert, latency
    from tfphys import rundir
    from tfphys.darkshowers import pipeline

    x = pipeline.load_masks(data, np.arange(1))
    exported = run / f"model_{precision}.tflite"
    content = (exported.read_bytes() if exported.is_file()
               else convert.convert(convert.for_deployment(rundir.open_run(run).load_model()), precision))
    interp = latency.interpreter(content)
    p50 = latency.summary(latency.time_tflite(interp, [x]))["p50"]
    return p50, 1000.0 / p50


def _score(run, data, out, runtime, processes, threads):
    """Start ``processes`` shards at once; wall time until the last one finished."""
    code = "import sys; from tfphys.cli import score_main; sys.exit(score_main(sys.argv[1:]))"
    engine, _, precision = runtime.partition("-")
    flags = ["--runtime", engine] + (["--precision", precision] if precision else [])
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code, "shard", str(run), "--data", str(data), "--out", str(out),
                               "--shard", f"{i}/{processes}", "--threads", str(threads), *flags],
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


def _rows(text: str) -> list[tuple[str, int, int]]:
    """``keras:1x2,litert-float32:2x1`` → [(runtime, processes, threads), …]."""
    rows = []
    for item in text.split(","):
        runtime, _, shape = item.strip().partition(":")
        p, _, t = shape.partition("x")
        rows.append((runtime, int(p), int(t)))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", help="tfphys-train run dir (default: runs/codae or an untrained CoDAE)")
    p.add_argument("--data", help="file to score (default: the cached toy QCD file, --events events)")
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the fastest is reported")
    p.add_argument("--precision", default="float16", help="the export's precision timed for the target row")
    p.add_argument("--rows", help="runtime:PxT,… (default: keras:1xC,keras:Px1,litert-float32:1x1,"
                                  "litert-float32:Px1,litert-float16:Px1; C cores, P --processes)")
    args = p.parse_args()

    cores = os.cpu_count() or 1
    P = args.processes
    setups = _rows(args.rows or f"keras:1x{cores},keras:{P}x1,litert-float32:1x1,litert-float32:{P}x1,"
                                f"litert-float16:{P}x1")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data:
            data = Path(args.data)
        else:
            from tfphys.darkshowers.generate import default_dataset

            data = default_dataset("qcd", args.events, 20240902)
        run = Path(args.run) if args.run else (Path("runs/codae") if Path("runs/codae/model.keras").exists()
                                               else _untrained_run("codae", tmp))
        if not args.run and not (run / "model_float32.tflite").exists() and run.parent == tmp:
            _write_exported(run)
        import h5py

        with h5py.File(data, "r") as f:
            n = len(f["label"] if "label" in f else f["kind"])
        walls = {s: [] for s in setups}
        # Interleaved repeats (A B C A B C …): on a shared machine every configuration meets
        # similar competition; the fastest repeat of each is reported.
        for r in range(args.repeats):
            for runtime, processes, threads in setups:
                wall = _score(run, data, tmp / f"r{r}{runtime}p{processes}t{threads}", runtime, processes, threads)
                walls[(runtime, processes, threads)].append(wall)
                print(f"  {runtime} {processes} process(es) × {threads} thread(s): {wall:.1f} s "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr)
        p50, per_core = _export_rate(run, data, args.precision)
    load = os.getloadavg()
    print(f"Sharded scoring of {n} events of {data.name} with {run} — {platform.processor() or platform.machine()}, "
          f"{cores} cores, load average (1 min) before/after {load_before[0]:.2f}/{load[0]:.2f}")
    print()
    target = per_core * cores
    print(f"| runtime | processes × threads | wall (s, start-up included; best of {args.repeats}) | events/s | "
          f"export rate × {cores} cores / events/s |")
    print("|---|---|---|---|---|")
    print(f"| exported {args.precision} model alone (LiteRT, batch 1, p50 {p50:.2f} ms) | – × 1 per core | – | "
          f"{target:.0f} | 1.00× |")
    for setup in setups:
        runtime, processes, threads = setup
        wall = min(walls[setup])
        repeats = " / ".join(f"{w:.1f}" for w in walls[setup])
        print(f"| {runtime} | {processes} × {threads} | {wall:.1f} ({repeats}) | {n / wall:.1f} | "
              f"{target / (n / wall):.2f}× |")
    print()
    print("Every configuration's shards were merged and checked: each event scored exactly once.")


if __name__ == "__main__":
    main()
