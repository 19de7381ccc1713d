"""The export report: ``report.json`` (machine-readable), ``report.md`` (for a person, verdict first)
and ``latency.png`` (timing histograms against the budget)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from export import files  # noqa: E402
from tfphys.reports import savefig  # noqa: E402

#: Keys every report.json has (the schema tests check them).
REQUIRED_KEYS = (
    "model", "precision", "threads", "batch_size", "size_bytes", "size_bytes_float32",
    "latency_ms", "keras_latency_ms", "budget_ms", "within_budget", "max_abs_diff",
    "auroc_float32", "auroc_exported", "flops", "achieved_gflops", "cpu", "submodels",
)
SUBMODEL_KEYS = ("size_bytes", "size_bytes_float32", "latency_ms", "latency_ms_float32",
                 "keras_latency_ms", "within_budget", "max_abs_diff", "flops", "achieved_gflops")


def cpu_info() -> dict[str, Any]:
    """CPU model name (from /proc/cpuinfo where available) and core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": name, "cores": os.cpu_count()}


def write_json(report: dict[str, Any], path) -> Path:
    return files.write_text(path, json.dumps(report, indent=2, sort_keys=False) + "\n")


def _fmt_latency(lat: dict[str, float]) -> str:
    return f"{lat['p50']:.2f} / {lat['p99']:.2f}"


def verdict(report: dict[str, Any]) -> str:
    status = "WITHIN BUDGET" if report["within_budget"] else "OVER BUDGET"
    return (f"**{status}** — {report['model']} {report['precision']} p99 "
            f"{report['latency_ms']['p99']:.2f} ms vs budget {report['budget_ms']:g} ms "
            f"({report['threads']} thread{'s' if report['threads'] > 1 else ''}, batch {report['batch_size']})")


def _engine(report: dict[str, Any]) -> str:
    """The runtime and precision the report's main latency is of."""
    return "ONNX Runtime float32" if report["precision"] == "onnx" else f"LiteRT {report['precision']}"


def write_markdown(report: dict[str, Any], path) -> Path:
    r = report
    lines = [
        verdict(r), "",
        f"# Export report: `{r['model']}` at {r['precision']}", "",
        f"Source `{r.get('source', '?')}`; CPU {r['cpu']['model']} ({r['cpu']['cores']} cores); "
        f"{r.get('iterations', r.get('runs', '?'))} timed invocations after {r.get('warmup', '?')} warm-up "
        f"invocations.", "",
        "| path | size | p50 / p99 ms | mean ms | max ms | CPU ms, mean (thread) | GFLOP/s (p50) |",
        "|---|---|---|---|---|---|---|",
    ]
    gflop = r["flops"] / 1e9 if r.get("flops") else None
    elsewhere = []  # paths that spend CPU on threads other than the caller's: hidden from a per-module timer
    for label, lat, size, cpu in (
        (_engine(r), r["latency_ms"], r["size_bytes"], r.get("cpu_ms")),
        ("LiteRT float32", r["latency_ms_float32"], r["size_bytes_float32"], r.get("cpu_ms_float32")),
        (f"Keras + tf.function ({r.get('keras_threads', '?')} thr.)", r["keras_latency_ms"], None,
         r.get("keras_cpu_ms")),
    ):
        rate = f"{gflop / (lat['p50'] / 1e3):.1f}" if gflop else "–"
        size_txt = f"{size / 1e6:.2f} MB" if size else "–"
        cpu_txt = f"{cpu['mean']:.2f} ({cpu['thread_mean']:.2f})" if cpu else "–"
        if cpu and cpu["mean"] > 0 and cpu["thread_mean"] < 0.8 * cpu["mean"]:
            elsewhere.append(f"{label.split(' (')[0]} {1 - cpu['thread_mean'] / cpu['mean']:.0%}")
        lines.append(f"| {label} | {size_txt} | {_fmt_latency(lat)} | {lat['mean']:.2f} | "
                     f"{lat['max']:.2f} | {cpu_txt} | {rate} |")
    lines += [
        "",
        f"- size: {r['size_bytes'] / r['size_bytes_float32']:.3f}× the float32 file",
        f"- speed-up (p50): {r['speedup_vs_float32']:.2f}× vs LiteRT float32, "
        f"{r['speedup_vs_keras']:.2f}× vs Keras + tf.function",
        f"- FLOPs per event: {r['flops'] / 1e6:.1f} M; achieved {r['achieved_gflops']:.1f} GFLOP/s at p50",
        f"- outputs vs Keras on {r['n_validation']} events: max |Δ| {r['max_abs_diff']:.3g}, "
        f"mean |Δ| {r['mean_abs_diff']:.3g} (tolerance {r['tolerance'][0]:g}, mean {r['tolerance'][1]:g})",
    ]
    if elsewhere:
        lines.append(f"- CPU time spent on threads other than the calling one (a per-module timer misses it): "
                     f"{', '.join(elsewhere)}")
    if r.get("onnx"):
        o = r["onnx"]
        tensors = {kind: ", ".join(f"`{v['name']}` {v['shape']} {v['dtype']}" for v in o[kind])
                   for kind in ("inputs", "outputs")}
        lines.append(f"- ONNX opset {o['opset']}, layout {o['layout']}, inputs {tensors['inputs']}; "
                     f"outputs {tensors['outputs']}; "
                     f"ONNX Runtime as CMSSW's ONNXService runs it ("
                     f"{', '.join(f'{k} {v}' for k, v in o['session_options'].items())}, "
                     f"{o['graph_optimization_level']})")
    if r.get("auroc_exported") is not None:
        lines.append(f"- AUROC of the {r.get('anomaly_score', 'anomaly')} score (background vs signal, "
                     f"{r['n_auroc']} events): Keras {r['auroc_keras']:.4f}, float32 "
                     f"{r['auroc_float32']:.4f}, {r['precision']} {r['auroc_exported']:.4f} "
                     f"(Δ {r['auroc_exported'] - r['auroc_float32']:+.4f})")
    if r["submodels"]:
        lines += ["", "## Sub-models (each exported and timed alone)", "",
                  f"| sub-model | size | {r['precision']} p50 / p99 ms | float32 p50 / p99 ms | "
                  "Keras p50 / p99 ms | MFLOP | GFLOP/s | max abs Δ | budget |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, s in r["submodels"].items():
            lines.append(
                f"| `{name}` | {s['size_bytes'] / 1e6:.2f} MB | {_fmt_latency(s['latency_ms'])} | "
                f"{_fmt_latency(s['latency_ms_float32'])} | {_fmt_latency(s['keras_latency_ms'])} | "
                f"{s['flops'] / 1e6:.1f} | {s['achieved_gflops']:.1f} | {s['max_abs_diff']:.3g} | "
                f"{'✓' if s['within_budget'] else '✗'} |")
    lines += _hlt_lines(r)
    lines += ["", f"Files: {', '.join(f'`{f}`' for f in r.get('files', []))}", ""]
    return files.write_text(path, "\n".join(lines))


def plot_latency(timings: dict[str, np.ndarray], budget_ms: float, path, *, title: str) -> Path:
    """Histograms of per-invocation latency (log-x), one per path, with p99 marks and the budget."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    all_t = np.concatenate(list(timings.values()))
    bins = np.geomspace(max(all_t.min() * 0.8, 1e-3), max(all_t.max(), budget_ms) * 1.2, 80)
    for (label, t), colour in zip(timings.items(), ("C0", "C1", "C2", "C3", "C4", "C5")):
        ax.hist(t, bins=bins, histtype="step", lw=1.6, color=colour,
                label=f"{label} (p99 {np.percentile(t, 99):.2f} ms)")
        ax.axvline(np.percentile(t, 99), color=colour, ls=":", lw=1)
    ax.axvline(budget_ms, color="k", ls="--", lw=1.5, label=f"budget {budget_ms:g} ms")
    ax.set_xscale("log")
    ax.set_xlabel("latency per event [ms] (batch 1)")
    ax.set_ylabel("invocations")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return savefig(fig, path, dpi=110)


def _parts(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"model": r, **r["submodels"]}


def _label(name: str) -> str:
    return "full model" if name == "model" else f"`{name}` (pre-filter)" if name == "f_m" else f"`{name}`"


def _hlt_lines(r: dict[str, Any]) -> list[str]:
    """The report in HLT terms: time and CPU per event, threads, memory, N instances, farm cost,
    the working point, and what the artifacts are."""
    if "farm_cores" not in r:
        return []
    rate = r["input_rate_hz"]
    lines = ["", "## In HLT terms", "",
             f"Batch 1, one event per call. CPU = process CPU time per call (every thread of the process; "
             f"the calling thread's alone in brackets). Farm cost = input rate {rate / 1e3:g} kHz × time "
             f"per event, in cores, from the mean wall time, the mean CPU time and the N instances' mean time. "
             f"Wall time above CPU time means the process waited for a core (a loaded machine): the CPU figure "
             f"does not depend on the load; the N-instance figure shows what a full node gives.", "",
             "| model | mean / p99 ms | CPU ms (thread) | threads: runtime imported → loaded → running | RSS added MB "
             "(after runs) | N inst. | events/s total | mean ms per inst. | cores: wall | CPU | N inst. |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    flagged = []
    for name, p in _parts(r).items():
        c, f = p.get("concurrent"), p["farm_cores"]
        if c:
            threads = (f"{c['threads_before_load']} → {c['threads_after_load']} → {c['threads_during']}"
                       + (f" **(+{c['threads_added']})**" if c["threads_added"] else ""))
            if c["threads_added"]:
                flagged.append(f"{_label(name)} +{c['threads_added']}")
            conc = (f"{c['rss_load_bytes'] / 1e6:.1f} ({c['rss_after_runs_bytes'] / 1e6:.1f}) | {c['instances']} | "
                    f"{c['events_per_s']:.0f} | {c['mean_ms']:.2f}")
            cores_n = f"{f['concurrent']:.0f}"
        else:
            threads, conc, cores_n = "–", "– | – | – | –", "–"
        lines.append(f"| {_label(name)} | {p['latency_ms']['mean']:.2f} / {p['latency_ms']['p99']:.2f} | "
                     f"{p['cpu_ms']['mean']:.2f} ({p['cpu_ms']['thread_mean']:.2f}) | {threads} | {conc} | "
                     f"{f['wall']:.0f} | {f['cpu']:.0f} | {cores_n} |")
    lines.append("")
    if r.get("concurrent"):
        lines.append(f"- threads and memory from {r['concurrent']['instances']} single-thread instances, each a "
                     f"fresh process (multiprocessing spawn) loading the file and running the same event; "
                     + (f"**a runtime started threads of its own**: {', '.join(flagged)}" if flagged
                        else "no runtime started a thread of its own"))
    wp = r.get("working_point")
    if wp:
        asked = (f"background rate {wp['background_rate_hz']:g} Hz of {wp['input_rate_hz'] / 1e3:g} kHz"
                 if "background_rate_hz" in wp else f"background efficiency {wp['background_efficiency_asked']:g}")
        lines += [f"- working point ({asked}: efficiency {wp['background_efficiency_target']:.3g}): the "
                  f"{r.get('anomaly_score', 'anomaly')} score of the exported model > **{wp['threshold']:.6g}** keeps "
                  f"{wp['background_efficiency']:.3g} of {wp['background_events']} background events"
                  + (f" (the sample resolves {wp['resolution']:.3g}: raise --samples)"
                     if wp["background_efficiency_target"] < wp["resolution"] else "")
                  + f"; trigger decisions that flip between the export and Keras at it: **{wp['flips']}** of "
                    f"{wp['flip_events']}", "",
                  "| signal | events | efficiency at the threshold |", "|---|---|---|"]
        lines += [f"| {c} | {v['events']} | {v['efficiency']:.3f} |" for c, v in wp["signal_efficiency"].items()]
        lines.append(f"| all signal | {sum(v['events'] for v in wp['signal_efficiency'].values())} | "
                     f"{wp['signal_efficiency_all']:.3f} |")
        lines.append("")
    lines += ["### Artifacts", "", "| file | inputs | outputs | sha256 |", "|---|---|---|---|"]
    for name, p in _parts(r).items():
        io = p["io"]

        def tensors(kind):
            return "; ".join(f"`{v['name']}` {v['shape']} {v['dtype']}" for v in io[kind])

        lines.append(f"| `{p['file']}` | {tensors('inputs')} ({io['layout']}) | {tensors('outputs')} | "
                     f"`{r['sha256'].get(p['file'], '?')}` |")
    v = r.get("versions", {})
    lines += ["", "Toolchain: " + ", ".join(f"{k} {v[k] or '–'}" for k in v)
              + (f"; ONNX opset {r['onnx']['opset']}" if r.get("onnx") else "")]
    return lines
