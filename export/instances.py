"""N single-thread instances of an exported model, each in its own fresh process, run at once.

An HLT node runs one single-threaded instance of a path per core. :func:`run_instances` starts N
processes with ``multiprocessing``'s ``spawn`` (fresh interpreters: no TensorFlow, no forked
state), each loading the artifact with its runtime (LiteRT or ONNX Runtime as CMSSW runs it) and
running the same inputs; all start timing together (a barrier). Each measures in its own clean
process what the exporter's process, full of TensorFlow, cannot show cleanly:

* the OS threads of the process (``/proc/self/task``) at its start, once the runtime is imported,
  after loading the model and during inference — a runtime that starts a thread pool for a model
  spends CPU the HLT timers do not see (``threads_added``: loading and running, not the import);
* the resident memory the model adds (``/proc/self/statm``) once loaded and after its first runs
  (the runtime's arenas);
* wall and process CPU time over the timed runs.

This module imports neither TensorFlow nor tfphys (the children import it, and only numpy and the
runtime besides).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from queue import Empty
from typing import Any

import numpy as np


def thread_count() -> int:
    """OS threads of this process now (Linux: entries of ``/proc/self/task``)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - not Linux
        import threading

        return threading.active_count()


def rss_bytes() -> int:
    """Resident set size of this process now, in bytes (``/proc/self/statm``; else ru_maxrss)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cores() -> int:
    """Cores this process may run on (its affinity mask), the N of :func:`run_instances`."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _stderr_to_devnull():
    """LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on fd 2 from C."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _runtime(kind: str):
    """The runtime's module, imported (importing ``onnxruntime`` starts one thread of its own)."""
    if kind == "onnx":
        import onnxruntime

        return onnxruntime
    from ai_edge_litert import interpreter

    return interpreter


def _load(kind: str, path: str, ort_options: dict[str, Any]):
    """``(kind, session or interpreter)`` of the artifact at ``path``, on one thread."""
    if kind == "onnx":
        ort = _runtime(kind)
        options = ort.SessionOptions()
        options.intra_op_num_threads = ort_options["intra_op_num_threads"]
        options.inter_op_num_threads = ort_options["inter_op_num_threads"]
        options.execution_mode = getattr(ort.ExecutionMode, ort_options["execution_mode"])
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ort_options["graph_optimization_level"])
        options.log_severity_level = 3
        return ("onnx", ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]))
    with _stderr_to_devnull():
        interp = _runtime(kind).Interpreter(model_path=path, num_threads=1)
        interp.allocate_tensors()
    return ("tflite", interp)


def _invoker(runner, inputs: Sequence[np.ndarray]):
    kind, engine = runner
    if kind == "onnx":
        feed = {i.name: np.ascontiguousarray(x, np.float32) for i, x in zip(engine.get_inputs(), inputs)}
        return lambda: engine.run(None, feed)
    from export.latency import set_inputs

    set_inputs(engine, inputs)
    return engine.invoke


def _instance(job, runs: int, warmup: int, ort_options, barrier, queue, index: int) -> None:
    """One instance (a fresh child process): load one artifact, run it in step with the others."""
    name, kind, path, inputs = job
    try:
        threads_start = thread_count()
        _runtime(kind)
        threads_before, rss_before = thread_count(), rss_bytes()
        runner = _load(kind, path, ort_options)
        threads_loaded, rss_loaded = thread_count(), rss_bytes()
        call = _invoker(runner, inputs)
        for _ in range(max(warmup, 1)):
            call()
        rss_run = rss_bytes()
        error = None
    except Exception as err:  # reported by the parent as one line
        error = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
    barrier.wait(timeout=600)
    if error is not None:
        queue.put((index, name, {"error": error}))
        return
    during = []
    cpu0, start = time.process_time_ns(), time.perf_counter_ns()
    for i in range(runs):
        call()
        if i in (0, runs // 2, runs - 1):
            during.append(thread_count())
    end, cpu1 = time.perf_counter_ns(), time.process_time_ns()
    queue.put((index, name, {
        "threads_at_start": threads_start, "threads_before_load": threads_before, "threads_after_load": threads_loaded,
        "threads_during": max(during), "rss_load_bytes": rss_loaded - rss_before,
        "rss_after_runs_bytes": rss_run - rss_before, "start_ns": start, "end_ns": end,
        "cpu_ns": cpu1 - cpu0, "runs": runs}))


@contextlib.contextmanager
def _children_skip_main():
    """Spawned children re-run the parent's ``__main__`` (for ``tfphys-export``, its console script,
    which imports TensorFlow: seconds and ~0.5 GB per child, polluting the memory it measures). The
    child needs nothing from it, so ``__main__`` looks like an interactive one while they start."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def run_instances(jobs: Sequence[tuple[str, str, str, Sequence[np.ndarray]]], n: int, *, runs: int,
                  warmup: int, ort_options: dict[str, Any], timeout: float = 600.0) -> dict[str, dict[str, Any]]:
    """Run every job ``(name, kind "onnx" | "tflite", path, batch-1 inputs)`` in ``n`` concurrent
    single-thread instances, ``n`` fresh (spawned) processes per job, so that each measures one
    model alone; jobs one after the other. Returns per job name: ``instances``, ``events_per_s``
    (all instances' events over the span from the first start to the last end), the per-instance
    ``mean_ms`` and CPU ``cpu_ms`` per event, and the thread and memory figures of the instances
    (the largest over them), or ``error``."""
    return {name: _combine(_run_job((name, kind, str(path), [np.asarray(x, np.float32) for x in inputs]), n,
                                    runs, warmup, ort_options, timeout), n)
            for name, kind, path, inputs in jobs}


def _run_job(job, n, runs, warmup, ort_options, timeout) -> list[dict[str, Any]]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_instance, args=(job, runs, warmup, ort_options, barrier, queue, k), daemon=True)
             for k in range(n)]
    with _children_skip_main():
        for p in procs:
            p.start()
    found = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < n:
            try:
                found.append(queue.get(timeout=1.0)[2])
            except Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                if dead or time.monotonic() > deadline:
                    why = f"exit code {dead[0]}" if dead else f"no result within {timeout:g} s"
                    raise RuntimeError(f"an instance of the concurrent run of {job[0]} failed ({why})") from None
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return found


def _combine(found: list[dict[str, Any]], n: int) -> dict[str, Any]:
    errors = [r["error"] for r in found if "error" in r]
    if errors:
        return {"instances": n, "error": errors[0]}
    span_s = (max(r["end_ns"] for r in found) - min(r["start_ns"] for r in found)) / 1e9
    events = sum(r["runs"] for r in found)
    return {
        "instances": n,
        "events_per_s": events / span_s,
        "mean_ms": float(np.mean([(r["end_ns"] - r["start_ns"]) / 1e6 / r["runs"] for r in found])),
        "cpu_ms": float(np.mean([r["cpu_ns"] / 1e6 / r["runs"] for r in found])),
        "threads_at_start": max(r["threads_at_start"] for r in found),
        "threads_before_load": max(r["threads_before_load"] for r in found),
        "threads_after_load": max(r["threads_after_load"] for r in found),
        "threads_during": max(r["threads_during"] for r in found),
        "threads_added": max(max(r["threads_after_load"], r["threads_during"]) - r["threads_before_load"]
                             for r in found),
        "rss_load_bytes": max(r["rss_load_bytes"] for r in found),
        "rss_after_runs_bytes": max(r["rss_after_runs_bytes"] for r in found),
    }
