"""Aggregated latency benchmark: export every trained model given, at each precision, into one table.

    python tools/bench_export.py runs/codae runs/cae --precisions float16,int8 --out export-bench.md

For every run dir (or ``.keras`` file) and precision it runs the full ``tfphys-export`` path —
builtin-ops conversion, LiteRT validation against Keras, batch-1 timing side by side with the
float32 TFLite model and Keras + ``tf.function`` — into ``RUN/export-PRECISION/`` and writes one
Markdown table: sizes, p50/p99 latencies, speed-ups, AUROC change and the verdict against the budget,
with one row per sub-model (CoDAE: f_R, f_m, decoder).

``--compare-rewrite`` adds a side-by-side table of the export-time rewrite
(``export.convert.for_deployment``: ``GroupedConv2D`` → one ``Conv2D(groups)``): the full model
converted with and without it, timed interleaved in blocks of 10 invokes, float32 and int8.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def rows_for(report: dict) -> list[str]:
    r = report
    auroc = (f"{r['auroc_exported'] - r['auroc_float32']:+.4f}" if r.get("auroc_exported") is not None else "–")
    lines = [
        f"| {r['model']} | {r['precision']} | {r['size_bytes'] / 1e6:.2f} MB "
        f"({r['size_bytes'] / r['size_bytes_float32']:.2f}×) | {r['latency_ms']['p50']:.2f} | "
        f"{r['latency_ms']['p99']:.2f} | {r['speedup_vs_float32']:.2f}× | {r['speedup_vs_keras']:.2f}× | "
        f"{r['achieved_gflops']:.1f} | {auroc} | {'✓' if r['within_budget'] else '✗'} |"]
    for name, s in r["submodels"].items():
        lines.append(
            f"| ↳ {name} | {r['precision']} | {s['size_bytes'] / 1e6:.2f} MB "
            f"({s['size_bytes'] / s['size_bytes_float32']:.2f}×) | {s['latency_ms']['p50']:.2f} | "
            f"{s['latency_ms']['p99']:.2f} | {s['latency_ms_float32']['p50'] / s['latency_ms']['p50']:.2f}× | "
            f"{s['keras_latency_ms']['p50'] / s['latency_ms']['p50']:.2f}× | {s['achieved_gflops']:.1f} | – | "
            f"{'✓' if s['within_budget'] else '✗'} |")
    return lines


def compare_rewrite(target, iterations: int, threads: int) -> list[str]:
    """The full model with and without the export-time rewrite, timed interleaved (p50/p99 ms)."""
    import numpy as np

    from export import convert as conv
    from export import latency
    from export.exporter import _spec_and_config, load_target

    model, cfg, _ = load_target(target)
    spec, cfg = _spec_and_config(model, cfg)
    rep = spec.representative(cfg, 50, 0)
    calibration = [[rep[i:i + 1]] for i in range(len(rep))]
    variants = {"as trained (split/conv/concat)": model, "Conv2D(groups) (tfphys-export)": conv.for_deployment(model)}
    lines = [f"Export-time rewrite, {Path(target)}: LiteRT {threads} thread(s), batch 1, {iterations} invocations "
             "each, interleaved in blocks of 10", "",
             "| graph | precision | p50 ms | p99 ms | speed-up (p50) |", "|---|---|---|---|---|"]
    for precision in ("float32", "int8"):
        interps = {name: latency.interpreter(conv.convert(m, precision, calibration if precision == "int8" else None),
                                             threads) for name, m in variants.items()}
        times = {name: [] for name in interps}
        for _ in range(max(1, iterations // 10)):
            for name, interp in interps.items():
                times[name].append(latency.time_tflite(interp, [rep[:1]], runs=10, warmup=1))
        stats = {name: latency.summary(np.concatenate(t)) for name, t in times.items()}
        base = stats[next(iter(stats))]["p50"]
        lines += [f"| {name} | {precision} | {s['p50']:.2f} | {s['p99']:.2f} | {base / s['p50']:.2f}× |"
                  for name, s in stats.items()]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="run dirs or .keras files")
    parser.add_argument("--precisions", default="float16,int8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=200, help="timed invocations")
    parser.add_argument("--budget-ms", type=float, default=100.0)
    parser.add_argument("--data", help="labelled file for validation/AUROC (default: family sample)")
    parser.add_argument("--out", default="export-bench.md", help="Markdown table to write")
    parser.add_argument("--compare-rewrite", action="store_true",
                        help="also time each model with and without the GroupedConv2D → Conv2D(groups) rewrite")
    args = parser.parse_args(argv)

    from tfphys.cli import _import_tensorflow_quietly

    _import_tensorflow_quietly()
    from export.exporter import export
    from export.report import cpu_info
    from tfphys.errors import TfphysError

    cpu = cpu_info()
    lines = [f"Export benchmark — {cpu['model']}, {cpu['cores']} cores; LiteRT {args.threads} thread(s), "
             f"batch 1, {args.iterations} timed invocations; budget {args.budget_ms:g} ms (p99)", "",
             "| model | precision | size (÷ float32) | p50 ms | p99 ms | speed-up vs float32 | "
             "vs Keras | GFLOP/s | ΔAUROC | budget |", "|---|---|---|---|---|---|---|---|---|---|"]
    failures = 0
    for target in args.targets:
        for precision in args.precisions.split(","):
            out = (Path(target) if Path(target).is_dir() else Path(target).parent) / f"export-{precision}"
            print(f"exporting {target} at {precision} …", file=sys.stderr)
            try:
                report = export(target, precision, out, threads=args.threads, iterations=args.iterations,
                                budget_ms=args.budget_ms, data=args.data)
            except TfphysError as err:
                failures += 1
                lines.append(f"| {target} | {precision} | export failed: {err} |||||||||")
                continue
            lines += rows_for(report)
    if args.compare_rewrite:
        for target in args.targets:
            lines += ["", *compare_rewrite(target, args.iterations, args.threads)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
