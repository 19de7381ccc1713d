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

``--onnx`` adds ONNX Runtime as CMSSW runs it (1 intra-op, 1 inter-op thread, sequential) against
LiteRT float32, per model and sub-model, one export-time graph change and ORT optimisation level at
a time, interleaved (``--only-onnx``: that table alone; ``paper-codae`` as a target: the paper-size
CoDAE with random weights)::

    taskset -c 0 python tools/bench_export.py paper-codae --only-onnx --iterations 200
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


def _random_paper_codae():
    """The paper-size CoDAE with random weights (biases and norm γ, β perturbed so that nothing folds
    away): what the latency is of does not depend on the weights."""
    import keras
    import numpy as np

    from tfphys import registry

    keras.utils.set_random_seed(0)
    model = registry.build(registry.get("codae"), {})
    rng = np.random.default_rng(1)
    for v in model.weights:
        if any(k in v.path for k in ("bias", "beta", "gamma")):
            v.assign(v + 0.1 * rng.normal(size=v.shape).astype("float32"))
    return model


def compare_onnx(target, iterations: int) -> list[str]:
    """ONNX Runtime (1 intra, 1 inter thread, sequential: CMSSW's ONNXService) against LiteRT float32
    (1 thread), batch 1, for the full model and each sub-model, one graph change or ORT optimisation
    level at a time, all timed interleaved in blocks of 10 invocations (p50 / p99 wall ms, and the
    median CPU time of the calling thread per invocation), with the ``Transpose`` nodes of each file
    and the NCHWc reorders ONNX Runtime adds at that level."""
    import tempfile

    import numpy as np

    from export import convert as conv
    from export import latency, to_onnx
    from export.exporter import _compare, _spec_and_config, load_target

    if target == "paper-codae":
        model = _random_paper_codae()
        x = (np.random.default_rng(2).random((8, *model.inputs[0].shape[1:])) < 0.05).astype("float32")
    else:
        model, cfg, _ = load_target(target)
        spec, cfg = _spec_and_config(model, cfg)
        x = np.asarray(spec.representative(cfg, 8, 0), np.float32)
    parts = {"full model": model, **conv.submodels(model)}
    steps = [  # (label, group_convs, fuse_norms, ORT level, saved ORT-optimised file)
        ("ORT: as Keras model.export gives it (split/conv/concat), ORT_DISABLE_ALL", False, False,
         "ORT_DISABLE_ALL", False),
        ("+ grouped convs as one Conv(group)", True, False, "ORT_DISABLE_ALL", False),
        ("+ instance norms fused (tfphys-export's file)", True, True, "ORT_DISABLE_ALL", False),
        ("+ ORT_ENABLE_BASIC (constant folding, redundant nodes)", True, True, "ORT_ENABLE_BASIC", False),
        ("+ ORT_ENABLE_EXTENDED (fusions)", True, True, "ORT_ENABLE_EXTENDED", False),
        ("+ ORT_ENABLE_ALL (NCHWc layout; ORT's and CMSSW's default)", True, True, "ORT_ENABLE_ALL", False),
        ("  same, from a saved ORT_ENABLE_EXTENDED-optimised file", True, True, "ORT_ENABLE_ALL", True),
        ("  without the fused norms, ORT_ENABLE_ALL", True, False, "ORT_ENABLE_ALL", False),
    ]
    lines = [f"ONNX Runtime vs LiteRT float32, {target}: batch 1, 1 thread each, {iterations} invocations per "
             "path, interleaved in blocks of 10", "",
             "| model | path | p50 ms | p99 ms | ÷ LiteRT p50 | ÷ LiteRT p99 | thread CPU ms (median) | ÷ LiteRT CPU | "
             "max abs Δ vs Keras | Transpose | NCHWc reorders |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-onnx-"))
    for part, m in parts.items():
        inputs = conv.submodel_inputs(model, part, [x]) if m is not model else [x]
        reference = [np.asarray(o) for o in (lambda o: o if isinstance(o, (list, tuple)) else [o])(
            m.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0))]
        one = [a[:1] for a in inputs]
        runners = {"LiteRT float32 (tfphys-export --float32)":
                   ("lite", latency.interpreter(conv.convert(conv.for_deployment(m), "float32"), 1))}
        protos, diffs, counts = {}, {}, {}
        for label, group_convs, fuse_norms, level, saved in steps:
            key = (group_convs, fuse_norms)
            if key not in protos:
                protos[key] = to_onnx.convert(m, group_convs=group_convs, fuse_norms=fuse_norms).SerializeToString()
            content = protos[key]
            if saved:
                path = tmp / f"{part}.ort-extended.onnx"
                to_onnx_session_saved(content, path)
                content = path.read_bytes()
            sess = to_onnx.session(content, 1, level)
            out = to_onnx.run_all(sess, inputs)
            _compare(part, "onnx", reference, out)
            diffs[label] = max(float(np.abs(o - r).max()) for o, r in zip(out, reference))
            counts[label] = graph_counts(content, level, tmp / f"{part}.counted.onnx")
            runners[label] = ("ort", sess)
        times = {label: [] for label in runners}
        for _ in range(max(1, iterations // 10)):
            for label, (kind, runner) in runners.items():
                timer = latency.time_tflite if kind == "lite" else to_onnx.time_session
                times[label].append(timer(runner, one, runs=10, warmup=1, cpu=True))
        stats = {label: latency.summary(np.concatenate([t.wall for t in ts])) for label, ts in times.items()}
        # the calling thread's CPU time per invocation (one thread each): what a loaded machine does not inflate
        cpu = {label: float(np.median(np.concatenate([t.thread_cpu for t in ts]))) for label, ts in times.items()}
        base = next(iter(stats.values()))
        base_cpu = next(iter(cpu.values()))
        for label, st in stats.items():
            ratio = (f"{st['p50'] / base['p50']:.2f} | {st['p99'] / base['p99']:.2f}" if label in diffs else "1 | 1")
            diff = f"{diffs[label]:.2g}" if label in diffs else "–"
            count = " | ".join(str(c) for c in counts[label]) if label in counts else "– | –"
            lines.append(f"| {part} | {label} | {st['p50']:.2f} | {st['p99']:.2f} | {ratio} | {cpu[label]:.2f} | "
                         f"{cpu[label] / base_cpu:.2f} | {diff} | {count} |")
    return lines


def graph_counts(content: bytes, level: str, path) -> tuple[int, int]:
    """``Transpose`` nodes in the file, and the NCHWc ``ReorderInput``/``ReorderOutput`` nodes in the graph
    ONNX Runtime runs at ``level`` (its optimised graph written to ``path`` only to be counted)."""
    import onnx
    import onnxruntime as ort

    from export import to_onnx

    transposes = sum(n.op_type == "Transpose" for n in onnx.load_from_string(content).graph.node)
    ort.InferenceSession(content, to_onnx.session_options(1, level, path), providers=["CPUExecutionProvider"])
    reorders = sum(n.op_type in ("ReorderInput", "ReorderOutput") for n in onnx.load(str(path)).graph.node)
    return transposes, reorders


def to_onnx_session_saved(content: bytes, path) -> None:
    """Write ONNX Runtime's ORT_ENABLE_EXTENDED-optimised graph of ``content`` to ``path`` (the
    portable level: ORT_ENABLE_ALL would save hardware-specific NCHWc ops)."""
    import onnxruntime as ort

    from export import to_onnx

    ort.InferenceSession(content, to_onnx.session_options(1, "ORT_ENABLE_EXTENDED", path),
                         providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="run dirs or .keras files (with --onnx also "
                        "'paper-codae': the paper-size CoDAE with random weights)")
    parser.add_argument("--precisions", default="float16,int8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=200, help="timed invocations")
    parser.add_argument("--budget-ms", type=float, default=100.0)
    parser.add_argument("--data", help="labelled file for validation/AUROC (default: family sample)")
    parser.add_argument("--out", default="export-bench.md", help="Markdown table to write")
    parser.add_argument("--compare-rewrite", action="store_true",
                        help="also time each model with and without the GroupedConv2D → Conv2D(groups) rewrite")
    parser.add_argument("--onnx", action="store_true",
                        help="also time ONNX Runtime (as CMSSW runs it) against LiteRT float32, one graph change "
                             "and ORT optimisation level at a time, for each model and sub-model")
    parser.add_argument("--only-onnx", action="store_true", help="only the --onnx table (no tfphys-export rows)")
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
    if args.only_onnx:
        lines = [f"Export benchmark — {cpu['model']}, {cpu['cores']} cores"]
    for target in [] if args.only_onnx else args.targets:
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
    if args.onnx or args.only_onnx:
        for target in args.targets:
            lines += ["", *compare_onnx(target, args.iterations)]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
