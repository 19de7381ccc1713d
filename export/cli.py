"""``tfphys-export TARGET --float16``: TFLite export, LiteRT validation and a latency report."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tfphys.cli import _import_tensorflow_quietly, _run, add_seed, add_threads


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfphys-export",
        description="Export a trained tfphys model to TFLite (builtin ops only) or ONNX (--onnx), validate "
                    "it with the LiteRT runtime (ONNX Runtime) against Keras, time it at batch 1 and write "
                    "report.json, report.md and latency.png.",
    )
    p.add_argument("target", metavar="RUN", help="a tfphys-train run dir (or a .keras file)")
    precision = p.add_mutually_exclusive_group()
    for name, text in (("float16", "float16 weights (default; the paper's HLT export)"),
                       ("float32", "float32 only"),
                       ("int8", "full-integer quantisation calibrated on training data"),
                       ("onnx", "float32 ONNX (opset 17, dynamic batch) for CMSSW / Triton, validated and timed "
                                "with ONNX Runtime as CMSSW runs it (1 intra-op, 1 inter-op thread, sequential)")):
        precision.add_argument(f"--{name}", dest="precision", action="store_const", const=name, help=text)
    p.add_argument("--out", help="output dir (default: next to the model)")
    add_threads(p, default=1, text="LiteRT threads per process, and TensorFlow's for the Keras timing "
                                   "(default 1: the HLT setting, not all cores)")
    p.add_argument("--iterations", type=int, default=200, metavar="K", help="timed invocations (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up invocations (default 20)")
    p.add_argument("--budget-ms", type=float, default=100.0, help="latency budget for p99 (default 100)")
    p.add_argument("--data", help="labelled HDF5 file (background + signal) for validation and AUROC "
                   "(default: the model family's cached sample)")
    p.add_argument("--samples", type=int, default=100, help="validation events per class (default 100)")
    add_seed(p, "the validation and calibration samples")
    p.add_argument("--no-submodels", dest="submodels", action="store_false",
                   help="skip exporting the nested sub-models (CoDAE: f_R, f_m, decoder)")
    hlt = p.add_argument_group("the report in HLT terms")
    hlt.add_argument("--rate-hz", type=float, default=100e3, metavar="HZ",
                     help="input rate for the farm cost and the working point (default 100 kHz: the L1 accept rate)")
    point = hlt.add_mutually_exclusive_group()
    point.add_argument("--background-rate-hz", type=float, metavar="HZ",
                       help="working point: the background rate kept at --rate-hz (default 1000 Hz)")
    point.add_argument("--background-efficiency", type=float, metavar="EFF",
                       help="working point: the background efficiency kept, in (0, 1)")
    hlt.add_argument("--instances", type=int, metavar="N",
                     help="concurrent single-thread instances, one fresh process each (default: the cores; 0: none)")
    p.set_defaults(precision="float16")
    return p


def _export(args: argparse.Namespace) -> int:
    # Keras is timed with as many threads as LiteRT, so the ratio compares engines, not cores.
    _import_tensorflow_quietly(threads=args.threads)
    from export.exporter import export
    from export.report import verdict

    report = export(args.target, args.precision, args.out, threads=args.threads, iterations=args.iterations,
                    warmup=args.warmup, budget_ms=args.budget_ms, data=args.data,
                    samples=args.samples, seed=args.seed, submodels=args.submodels, rate_hz=args.rate_hz,
                    background_rate_hz=args.background_rate_hz, background_efficiency=args.background_efficiency,
                    n_instances=args.instances)
    print(verdict(report).replace("**", ""))
    for name, sub in report["submodels"].items():
        print(f"  {name:<8} p50 {sub['latency_ms']['p50']:7.2f} ms  p99 {sub['latency_ms']['p99']:7.2f} ms")
    if report["auroc_exported"] is not None:
        print(f"AUROC ({report['anomaly_score']}): float32 {report['auroc_float32']:.4f}, "
              f"{report['precision']} {report['auroc_exported']:.4f}")
    for name, part in {"model": report, **report["submodels"]}.items():
        cores, c = part["farm_cores"], part["concurrent"]
        line = (f"  {name:<8} at {report['input_rate_hz'] / 1e3:g} kHz: {cores['wall']:.0f} cores (wall), "
                f"{cores['cpu']:.0f} (CPU)")
        if c:
            line += (f"; {c['instances']} instances {c['events_per_s']:.0f} events/s, "
                     f"+{c['rss_load_bytes'] / 1e6:.1f} MB, threads +{c['threads_added']}")
        print(line)
    wp = report["working_point"]
    if wp:
        print(f"working point: score > {wp['threshold']:.6g} keeps {wp['background_efficiency']:.3g} of "
              f"{wp['background_events']} background events, {wp['signal_efficiency_all']:.3f} of the signal; "
              f"{wp['flips']} of {wp['flip_events']} decisions flip vs Keras")
    print(f"report: {Path(args.out or Path(report['source']).parent) / 'report.md'}")
    return 0


def export_main(argv: Sequence[str] | None = None) -> int:
    return _run("tfphys-export", _export, export_parser(), argv)
