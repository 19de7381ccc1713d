"""One export, end to end: load → convert (builtin ops) → validate with LiteRT → time → report.

:func:`export` is what ``tfphys-export`` runs; it works for any model in the registry. A model's
nested Keras models (CoDAE: ``f_R``, ``f_m``, ``decoder``) are exported and timed alone too,
because a trigger may run only the part it needs (paper §5.5: the mask encoder alone).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from sklearn.metrics import roc_auc_score

from export import convert as conv
from export import files, hlt, instances, latency, to_onnx
from export import report as reports
from tfphys import config as configs
from tfphys import registry, rundir
from tfphys.atomic import fault_point

#: Allowed (max |Δ|, mean |Δ|) between LiteRT and Keras outputs, in units of
#: max(1, max |Keras output|). int8 output tensors have 256 levels and a pixel near a decision
#: boundary may move far; its *mean* deviation is what must stay small.
TOLERANCE = {"float32": (1e-3, 1e-4), "float16": (2e-2, 2e-3), "int8": (0.5, 1e-2), "onnx": (1e-3, 1e-4)}
#: what ``export(precision=…)`` accepts: the TFLite precisions, and ``onnx`` (float32 ONNX, validated and
#: timed with ONNX Runtime as CMSSW runs it, beside the float32 TFLite model; :mod:`export.to_onnx`)
TARGETS = (*conv.PRECISIONS, "onnx")


def _progress(what: str) -> None:
    """One line on stderr per export stage: the conversions and timings take tens of seconds each."""
    print(f"tfphys-export: {time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def load_target(target) -> tuple[keras.Model, dict[str, Any], Path]:
    """A run dir or a ``.keras`` file → (model, config, model path), with one clear error each.

    A run dir is opened by :func:`tfphys.rundir.open_run` (the messages of every command that
    takes a run); a ``.keras`` file takes the config of the run dir it sits in, if any.
    """
    target = Path(target)
    if not target.exists():
        raise conv.ExportError(f"{target} does not exist")
    if target.is_dir():
        run = rundir.open_run(target)
        return run.load_model(), run.config, run.model_path
    if target.suffix != ".keras":
        raise conv.ExportError(f"{target} is neither a run dir nor a .keras file")
    model = registry.load_model(target)
    in_run = (target.parent / rundir.CONFIG).is_file()
    return model, rundir.read_config(target.parent) if in_run else {}, target


def _spec_and_config(model, cfg):
    name = cfg.get("model_name", model.name)
    spec = registry.get(name)
    if not spec.exportable:
        raise conv.ExportError(spec.not_exportable or f"{name} has no export")
    if not cfg:  # a .keras file outside a run dir: models/NAME.toml, completed with the schema's defaults
        cfg = configs.resolve(spec, configs.load(configs.default_config_path(name)))
    return spec, cfg


def _run_all(interp, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """LiteRT outputs for every event, batch 1 (the deployed setting), in the Keras output order."""
    n = len(inputs[0])
    per_event = [latency.run_tflite(interp, [x[i:i + 1] for x in inputs]) for i in range(n)]
    return [np.concatenate(outs) for outs in zip(*per_event)]


def _as_list(outputs) -> list[np.ndarray]:
    return [np.asarray(o) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]


def _compare(name, precision, reference: list[np.ndarray], exported: list[np.ndarray]):
    """Every output of the export against Keras, each in units of its own scale (see TOLERANCE).

    Returns the largest max and mean |Δ| over the outputs and the tolerances of the first output.
    """
    if len(exported) != len(reference):
        raise conv.ExportError(f"{name} at {precision}: the export has {len(exported)} outputs, "
                               f"the Keras model {len(reference)}")
    worst, tolerances = [0.0, 0.0], []
    for k, (ref, out) in enumerate(zip(reference, exported)):
        label = f"{name} at {precision}" + (f", output {k}" if len(reference) > 1 else "")
        if out.shape != ref.shape:
            raise conv.ExportError(f"{label}: shape {out.shape} differs from Keras' {ref.shape}")
        if not np.all(np.isfinite(out)):
            raise conv.ExportError(f"{label}: the exported model gives non-finite outputs")
        diff = np.abs(out.astype(np.float64) - ref.astype(np.float64))
        scale = max(1.0, float(np.abs(ref).max()))
        tol_max, tol_mean = (t * scale for t in TOLERANCE[precision])
        if diff.max() > tol_max or diff.mean() > tol_mean:
            raise conv.ExportError(
                f"{label}: outputs differ from Keras by up to {diff.max():.3g} "
                f"(mean {diff.mean():.3g}; tolerance {tol_max:.3g}, mean {tol_mean:.3g}); "
                f"the export is not trustworthy")
        worst = [max(worst[0], float(diff.max())), max(worst[1], float(diff.mean()))]
        tolerances.append([tol_max, tol_mean])
    return worst[0], worst[1], tolerances[0]


def _measure(name, keras_model, inputs, calibration, precision, out, *, threads, iterations, warmup,
             budget_ms, timings=None) -> dict[str, Any]:
    """Convert at ``precision`` and float32, validate against Keras on ``inputs``, time all three.

    What is converted is :func:`export.convert.for_deployment` of the model (grouped convolutions
    as one ``Conv2D(groups)``); what it is validated and timed against is the Keras model itself.
    """
    deploy = conv.for_deployment(keras_model)
    _progress(f"{name}: converting to float32 TFLite")
    contents = {"float32": conv.convert(deploy, "float32")}
    interps = {"float32": latency.interpreter(contents["float32"], threads)}
    onnx_content = None
    if precision == "onnx":
        onnx_content = to_onnx.convert(keras_model).SerializeToString()
        files.write_bytes(out / f"{name}.onnx", onnx_content)
        session = to_onnx.session(onnx_content, threads)
    elif precision != "float32":
        _progress(f"{name}: converting to {precision} TFLite")
        order = latency.keras_input_order(interps["float32"], [t.name for t in deploy.inputs],
                                          [t.shape[1:] for t in deploy.inputs])
        keep_float = conv.output_names(contents["float32"]) if precision == "int8" else ()
        contents[precision] = conv.convert(deploy, precision, calibration, order, keep_float)
        interps[precision] = latency.interpreter(contents[precision], threads)
    for p, content in contents.items():
        files.write_bytes(out / f"{name}_{p}.tflite", content)

    _progress(f"{name}: validating against Keras on {len(inputs[0])} samples")
    reference = _as_list(keras_model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0))
    outputs = {p: _run_all(i, inputs) for p, i in interps.items()}
    if onnx_content is not None:
        outputs["onnx"] = to_onnx.run_all(session, inputs)
        # the dynamic batch dimension: the whole sample in one call gives the same outputs too
        _compare(f"{name} (one batch of {len(inputs[0])})", "onnx", reference, to_onnx.run(session, inputs))
    max_diff, mean_diff, tolerance = _compare(name, precision, reference, outputs[precision])
    _compare(name, "float32", reference, outputs["float32"])

    one = [x[:1] for x in inputs]
    _progress(f"{name}: timing {iterations} single-event calls each ({precision}, float32, Keras)")
    if onnx_content is not None:
        c_exported = to_onnx.time_session(session, one, runs=iterations, warmup=warmup, cpu=True)
    else:
        c_exported = latency.time_tflite(interps[precision], one, runs=iterations, warmup=warmup, cpu=True)
    c_float32 = (c_exported if precision == "float32"
                 else latency.time_tflite(interps["float32"], one, runs=iterations, warmup=warmup, cpu=True))
    c_keras = latency.time_keras(keras_model, one, runs=iterations, warmup=warmup, cpu=True)
    t_exported, t_float32, t_keras = c_exported.wall, c_float32.wall, c_keras.wall
    if timings is not None:
        timings["ONNX Runtime" if onnx_content is not None else f"LiteRT {precision}"] = t_exported
        if precision != "float32":
            timings["LiteRT float32"] = t_float32
        timings["Keras tf.function"] = t_keras
    lat = latency.summary(t_exported)
    flops = conv.flops(keras_model)
    if onnx_content is not None:
        io = {k: v for k, v in to_onnx.describe(onnx_content, threads).items() if k in ("inputs", "outputs", "layout")}
    else:
        io = latency.describe(interps[precision])
    return {
        "size_bytes": len(onnx_content if onnx_content is not None else contents[precision]),
        "size_bytes_float32": len(contents["float32"]),
        "latency_ms": lat,
        "latency_ms_float32": latency.summary(t_float32),
        "keras_latency_ms": latency.summary(t_keras),
        "within_budget": lat["p99"] <= budget_ms,
        "max_abs_diff": max_diff,
        "mean_abs_diff": mean_diff,
        "tolerance": tolerance,
        "flops": flops,
        "achieved_gflops": flops / (lat["p50"] / 1e3) / 1e9,
        "file": f"{name}.onnx" if onnx_content is not None else f"{name}_{precision}.tflite",
        **({"onnx": to_onnx.describe(onnx_content, threads)} if onnx_content is not None else {}),
        "cpu_ms": _cpu(c_exported),
        "cpu_ms_float32": _cpu(c_float32),
        "keras_cpu_ms": _cpu(c_keras),
        "io": io,
        "_outputs": outputs,
        "_reference": reference,
        "_one": one,
    }


def _cpu(timing: latency.Timing) -> dict[str, float]:
    """CPU milliseconds per invocation: the process's (every thread) mean and p99, the calling thread's mean."""
    return {"mean": float(timing.cpu.mean()), "p99": float(np.percentile(timing.cpu, 99)),
            "thread_mean": float(timing.thread_cpu.mean())}


def _keras_threads() -> int:
    import os

    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def versions() -> dict[str, str | None]:
    """The installed versions of the toolchain an artifact came from (None: not installed)."""
    from importlib import metadata

    found = {}
    for name in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def export(target, precision: str = "float16", out=None, *, threads: int = 1, iterations: int = 200,
           warmup: int = 20, budget_ms: float = 100.0, data=None, samples: int = 100,
           calibration_samples: int = 200, seed: int = 0, submodels: bool = True,
           rate_hz: float = hlt.INPUT_RATE_HZ, background_rate_hz: float | None = None,
           background_efficiency: float | None = None, n_instances: int | None = None) -> dict[str, Any]:
    """Export ``target`` (run dir or ``.keras``) at ``precision``; write files and reports to ``out``.

    ``data``: a labelled file (background and signal) for validation and the AUROC; without it, the
    model family's default labelled sample is used. ``samples``: events per class for that.
    ``iterations``: timed invocations (after ``warmup`` untimed ones) of every engine.
    The HLT figures (:mod:`export.hlt`): farm cost at ``rate_hz``; the working point at
    ``background_efficiency`` or ``background_rate_hz`` / ``rate_hz`` (default
    :data:`export.hlt.BACKGROUND_RATE_HZ`); ``n_instances`` concurrent single-thread instances
    (default: the cores; 0: none). Every file is written whole (:mod:`export.files`), and two exports
    into one directory take turns. Returns the report dict (also written as ``report.json``).
    """
    if threads < 1 or iterations < 2 or warmup < 0 or budget_ms <= 0 or samples < 1:
        raise conv.ExportError("need --threads ≥ 1, --iterations ≥ 2, --warmup ≥ 0, --budget-ms > 0, "
                               "--samples ≥ 1")
    if precision not in TARGETS:
        raise conv.ExportError(f"unknown precision {precision!r}; expected one of {', '.join(TARGETS)}")
    if rate_hz <= 0 or (n_instances is not None and n_instances < 0):
        raise conv.ExportError("need --rate-hz > 0 and --instances ≥ 0")
    if background_efficiency is not None and background_rate_hz is not None:
        raise conv.ExportError("give --background-rate-hz or --background-efficiency, not both")
    if background_efficiency is not None:
        if not 0 < background_efficiency < 1:
            raise conv.ExportError(f"--background-efficiency must be in (0, 1), got {background_efficiency:g}")
        wp_target = {"background_efficiency_asked": background_efficiency}
    else:
        background_rate_hz = hlt.BACKGROUND_RATE_HZ if background_rate_hz is None else background_rate_hz
        if not 0 < background_rate_hz < rate_hz:
            raise conv.ExportError(f"--background-rate-hz must be in (0, --rate-hz {rate_hz:g}), "
                                   f"got {background_rate_hz:g}")
        background_efficiency = hlt.efficiency_for_rate(background_rate_hz, rate_hz)
        wp_target = {"background_rate_hz": background_rate_hz, "input_rate_hz": rate_hz}
    model, cfg, model_path = load_target(target)
    spec, cfg = _spec_and_config(model, cfg)
    out = Path(out) if out else model_path.parent
    out.mkdir(parents=True, exist_ok=True)
    with files.locked(out):
        return _export(model, cfg, model_path, spec, precision, out, threads=threads, iterations=iterations,
                       warmup=warmup, budget_ms=budget_ms, data=data, samples=samples,
                       calibration_samples=calibration_samples, seed=seed, submodels=submodels, rate_hz=rate_hz,
                       background_efficiency=background_efficiency, wp_target=wp_target,
                       n_instances=instances.cores() if n_instances is None else n_instances)


def _export(model, cfg, model_path, spec, precision, out, *, threads, iterations, warmup, budget_ms, data,
            samples, calibration_samples, seed, submodels, rate_hz, background_efficiency, wp_target,
            n_instances) -> dict[str, Any]:
    if spec.labelled_sample is not None:
        x, is_signal = spec.labelled_sample(cfg, Path(data) if data else None, samples, seed)
    else:
        x, is_signal = spec.representative(cfg, samples, seed), None
    calibration = None
    if precision == "int8":
        rep = spec.representative(cfg, calibration_samples, seed)
        calibration = [[rep[i:i + 1]] for i in range(len(rep))]

    timings: dict[str, np.ndarray] = {}
    main = _measure("model", model, [x], calibration, precision, out, threads=threads, iterations=iterations,
                    warmup=warmup, budget_ms=budget_ms, timings=timings)
    aurocs = {"auroc_keras": None, "auroc_float32": None, "auroc_exported": None}
    working_point = None
    if spec.anomaly_score is not None and is_signal is not None:
        score = spec.anomaly_score
        keras_scores = np.asarray(score(x, main["_reference"][0]))
        exported_scores = np.asarray(score(x, main["_outputs"][precision][0]))
        aurocs = {
            "auroc_keras": float(roc_auc_score(is_signal, keras_scores)),
            "auroc_float32": float(roc_auc_score(is_signal, score(x, main["_outputs"]["float32"][0]))),
            "auroc_exported": float(roc_auc_score(is_signal, exported_scores)),
        }
        classes = (spec.sample_classes(cfg, Path(data) if data else None, samples, seed)
                   if spec.sample_classes is not None else None)
        working_point = hlt.working_point(exported_scores, keras_scores, is_signal, classes,
                                          background_efficiency=background_efficiency, target=wp_target)

    subs = {}
    sub_one = {}
    if submodels:
        for name, sub in conv.submodels(model).items():
            sub_inputs = conv.submodel_inputs(model, name, [x])
            sub_cal = None
            if calibration is not None:
                cal_in = conv.submodel_inputs(model, name, [np.concatenate([c[0] for c in calibration])])
                sub_cal = [[a[i:i + 1] for a in cal_in] for i in range(len(cal_in[0]))]
            result = _measure(name, sub, sub_inputs, sub_cal, precision, out, threads=threads,
                              iterations=iterations, warmup=warmup, budget_ms=budget_ms)
            sub_one[name] = result["_one"]
            subs[name] = {k: v for k, v in result.items() if not k.startswith("_") and k != "tolerance"}

    integration = []
    if precision == "onnx":  # a Triton model directory and a CMSSW producer sketch per ONNX file
        for name, part in {spec.name: main, **{f"{spec.name}_{k}": v for k, v in subs.items()}}.items():
            integration += to_onnx.write_integration(out, name, (out / part["file"]).read_bytes(), part["file"])

    # N single-thread instances in fresh processes: threads, memory, throughput of each artifact
    parts = {"model": main, **subs}
    concurrent = {}
    if n_instances:
        jobs = [(name, "onnx" if precision == "onnx" else "tflite", out / part["file"],
                 main["_one"] if name == "model" else sub_one[name]) for name, part in parts.items()]
        _progress(f"{n_instances} concurrent single-thread instances per artifact")
        try:
            concurrent = instances.run_instances(jobs, n_instances, runs=iterations, warmup=warmup,
                                                 ort_options={**to_onnx.SESSION_OPTIONS,
                                                              "graph_optimization_level": to_onnx.GRAPH_OPTIMIZATION})
        except RuntimeError as err:
            raise conv.ExportError(str(err)) from None
        failed = {name: c["error"] for name, c in concurrent.items() if "error" in c}
        if failed:
            name, why = next(iter(failed.items()))
            raise conv.ExportError(f"{name}: the concurrent instances could not run {parts[name]['file']}: {why}")
    for name, part in parts.items():
        part["concurrent"] = concurrent.get(name)
        part["farm_cores"] = {
            "wall": hlt.farm_cores(rate_hz, part["latency_ms"]["mean"]),
            "cpu": hlt.farm_cores(rate_hz, part["cpu_ms"]["mean"]),
            "concurrent": (hlt.farm_cores(rate_hz, concurrent[name]["mean_ms"]) if name in concurrent else None),
        }

    lat = main["latency_ms"]
    report = {
        "model": spec.name,
        "source": str(model_path),
        "precision": precision,
        "threads": threads,
        "keras_threads": _keras_threads(),
        "batch_size": 1,
        "iterations": iterations,
        "warmup": warmup,
        "size_bytes": main["size_bytes"],
        "size_bytes_float32": main["size_bytes_float32"],
        "latency_ms": lat,
        "latency_ms_float32": main["latency_ms_float32"],
        "keras_latency_ms": main["keras_latency_ms"],
        "cpu_ms": main["cpu_ms"],
        "cpu_ms_float32": main["cpu_ms_float32"],
        "keras_cpu_ms": main["keras_cpu_ms"],
        "speedup_vs_float32": main["latency_ms_float32"]["p50"] / lat["p50"],
        "speedup_vs_keras": main["keras_latency_ms"]["p50"] / lat["p50"],
        "budget_ms": budget_ms,
        "within_budget": main["within_budget"],
        "max_abs_diff": main["max_abs_diff"],
        "mean_abs_diff": main["mean_abs_diff"],
        "tolerance": main["tolerance"],
        "n_validation": int(len(x)),
        "anomaly_score": getattr(spec.anomaly_score, "__name__", None),
        "n_auroc": int(len(x)) if aurocs["auroc_exported"] is not None else 0,
        **aurocs,
        "input_rate_hz": rate_hz,
        "concurrent": main["concurrent"],
        "farm_cores": main["farm_cores"],
        "working_point": working_point,
        "flops": main["flops"],
        "achieved_gflops": main["achieved_gflops"],
        "cpu": reports.cpu_info(),
        "ops": (to_onnx.ops_used if precision == "onnx" else conv.ops_used)((out / main["file"]).read_bytes()),
        **({"onnx": main["onnx"]} if precision == "onnx" else {}),
        "io": main["io"],
        "file": main["file"],
        "versions": versions(),
        "files": sorted({main["file"], "model_float32.tflite", *(s["file"] for s in subs.values()),
                         *(f"{name}_float32.tflite" for name in subs), *integration}),
        "submodels": subs,
    }
    reports.plot_latency(timings, budget_ms, out / "latency.png",
                         title=f"{spec.name}: batch 1, {threads} thread(s), {iterations} timed invocations")
    report["sha256"] = {name: files.sha256(out / name) for name in [*report["files"], "latency.png"]}
    reports.write_markdown(report, out / "report.md")
    report["sha256"]["report.md"] = files.sha256(out / "report.md")
    fault_point("mid-report")  # tests/core/test_faults.py: report.md written, report.json not yet
    reports.write_json(report, out / "report.json")  # last: a report.json means the export is whole
    return report
