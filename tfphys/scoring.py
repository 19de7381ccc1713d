"""Sharded scoring of large files: ``tfphys-score shard RUN --data FILE --out DIR --shard i/N`` in
every process, then ``tfphys-score merge DIR`` once.

A million dark-shower events or ALBUS time-slide maps are scored by N independent processes
(hosts, ``srun`` tasks, or cores of one machine): shard ``i`` of ``N`` scores the events

    [⌊i·n/N⌋, ⌊(i+1)·n/N⌋)        (n events in the file; the shards tile 0 … n−1 exactly)

and writes ``DIR/scores-IIIII-of-NNNNN.h5`` with the event ``index`` beside every score. Shards need
no communication, so this scales to any number of workers; inference needs no gradient
all-reduce, which is why it is not a ``tf.distribute`` job. The merge then checks that every
index 0 … n−1 was scored exactly once — missing or duplicated events are an error that lists
their ranges — and writes ``DIR/scores.h5`` in file order.

Scores per family (the same as ``tfphys-eval``'s per-event ``scores.h5``, before any orientation):

* dark showers (codae, cae, codvae, ae, dirvae, cct): every §4.6 score of the model
  (:func:`tfphys.darkshowers.evaluate.model_scores`: BCE, SSE, SAE, SAE-mask, Dice⁻¹, PixelSum,
  each ``Z_m`` component raw, KL-R/KL-F, or the registry's ``anomaly_score``), plus the file's
  ``label``, ``mass`` and ``n_tracks``;
* ALBUS: the two detection statistics ``map_sum`` and ``largest_cluster``
  (:mod:`tfphys.albus.evaluate`), plus ``kind`` and ``visibility``.

``--runtime litert`` scores with the run's ``tfphys-export`` files instead of ``model.keras``
(:mod:`tfphys.runtime`: LiteRT, one single-thread interpreter per process, float32 files by default,
``--precision float16`` for the HLT's); the scores are the same functions of the model's outputs.

Shard files and the merged file are written under a temporary name and renamed when complete
(:mod:`tfphys.atomic`): a killed shard leaves no file that ``merge`` could take for finished; rerun
that shard alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from tfphys import registry, rundir
from tfphys import runtime as runtimes
from tfphys.atomic import atomic_path, fault_point
from tfphys.errors import TfphysError

SHARD_NAME = "scores-{i:05d}-of-{n:05d}.h5"
_SHARD_RE = re.compile(r"scores-(\d+)-of-(\d+)\.h5$")
MERGED_NAME = "scores.h5"
#: events read, preprocessed and scored at a time (memory: ~1 GB of dark-shower images, 32 maps)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` → ``(i, N)`` with ``0 ≤ i < N``."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not found:
        raise TfphysError(f"--shard must look like i/N (e.g. 0/4), got {text!r}")
    i, n = int(found.group(1)), int(found.group(2))
    if n < 1 or not 0 <= i < n:
        raise TfphysError(f"--shard {text}: need 0 ≤ i < N, got i = {i}, N = {n}")
    return i, n


def shard_range(n_events: int, i: int, n_shards: int) -> tuple[int, int]:
    """Events ``[start, stop)`` of shard ``i`` of ``n_shards``: ⌊i·n/N⌋ … ⌊(i+1)·n/N⌋.

    The shards tile ``0 … n−1`` without gap or overlap and differ in size by at most one.
    """
    if n_shards < 1 or not 0 <= i < n_shards:
        raise TfphysError(f"shard {i}/{n_shards}: need 0 ≤ i < N")
    return i * n_events // n_shards, (i + 1) * n_events // n_shards


def _load_run(run: Path, runtime: str = "keras", precision: str = "float32", threads: int | None = None):
    """(spec, model) of run dir ``run``, with :mod:`tfphys.rundir`'s messages; ``runtime="litert"``:
    the model is the run's exported files (:func:`tfphys.runtime.open_exported`), not Keras."""
    opened = rundir.open_run(run)
    if runtime == "keras":
        return opened.spec, opened.load_model()
    if runtime != "litert":
        raise TfphysError(f"--runtime must be one of {', '.join(runtimes.RUNTIMES)}, got {runtime!r}")
    return opened.spec, runtimes.open_exported(run, precision, threads=threads or 1)


def runtime_label(runtime: str, precision: str) -> str:
    """What a shard file's ``runtime`` attribute says: ``keras`` or ``litert-<precision>``."""
    return "keras" if runtime == "keras" else f"{runtime}-{precision}"


def score_shard(run, data, out_dir, *, shard: tuple[int, int] = (0, 1), seed: int = 0,
                progress: bool | None = None, runtime: str = "keras", precision: str = "float32",
                threads: int | None = None) -> Path:
    """Score shard ``shard = (i, N)`` of ``data`` with the model of run dir ``run``; return the
    shard file written in ``out_dir``.

    ``runtime``: ``keras`` (the reference: ``model.keras``) or ``litert`` (the run's exported
    ``.tflite`` files at ``precision``, one LiteRT interpreter of ``threads`` (default 1) threads,
    :mod:`tfphys.runtime`); the shard file records it, and the merge takes shards of one runtime only.
    """
    from tqdm.auto import tqdm

    run, data, out_dir = Path(run), Path(data), Path(out_dir)
    i, n_shards = shard
    spec, model = _load_run(run, runtime, precision, threads)
    scorer = spec.scorer
    if scorer is None:
        scoring = [n for n in registry.names() if registry.get(n).scorer is not None]
        raise TfphysError(f"{spec.name} has no per-event anomaly score to shard; sharded scoring covers "
                          f"{', '.join(scoring)}")
    other = [k.name for k in registry.file_kinds() if k.name != scorer.file_kind and k.recognises(data)]
    if other:
        raise TfphysError(f"{run} holds a {spec.name} model but {data} is a {other[0]} file "
                          f"(it scores {scorer.file_kind} files)")
    n_events = scorer.n_events(data)
    start, stop = shard_range(n_events, i, n_shards)
    chunk = scorer.chunk
    parts: dict[str, list[np.ndarray]] = {}
    bounds = range(start, stop, chunk)
    show = None if progress is None else not progress
    for a in tqdm(bounds, desc=f"shard {i}/{n_shards}", unit="chunk", disable=show):
        for name, values in scorer.score(model, spec, data, a, min(a + chunk, stop), seed).items():
            parts.setdefault(name, []).append(np.asarray(values, np.float64))

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SHARD_NAME.format(i=i, n=n_shards)
    with atomic_path(path) as part, h5py.File(data, "r") as src, h5py.File(part, "w") as f:
        f["index"] = np.arange(start, stop, dtype=np.int64)
        for column in scorer.columns:
            f[column] = src[column][start:stop]
        scores = f.create_group("scores")
        for name, values in parts.items():
            scores[name.replace("/", "_")] = np.concatenate(values)
        if not parts:  # an empty shard (N > n): keep the score names out of it, merge takes them from others
            scores.attrs["empty"] = True
        f.attrs.update(run=str(run.resolve()), model_name=spec.name, data=str(data.resolve()),
                       runtime=runtime_label(runtime, precision), family=spec.family, file_kind=scorer.file_kind,
                       n_events=n_events, shard=i, n_shards=n_shards, start=start, stop=stop)
        fault_point("mid-shard")
    return path


def _ranges(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted indices → maximal runs ``[a, b)``."""
    if len(indices) == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1)
    starts = np.concatenate([[indices[0]], indices[breaks + 1]])
    stops = np.concatenate([indices[breaks] + 1, [indices[-1] + 1]])
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def _describe(indices: np.ndarray, limit: int = 5) -> str:
    runs = _ranges(indices)
    text = ", ".join(f"[{a}, {b})" for a, b in runs[:limit])
    return text + (f" and {len(runs) - limit} more range(s)" if len(runs) > limit else "")


def check_coverage(index: np.ndarray, n_events: int) -> None:
    """Every event ``0 … n_events−1`` exactly once in ``index``; else a TfphysError naming the
    missing and the duplicated ranges."""
    index = np.asarray(index, np.int64)
    outside = index[(index < 0) | (index >= n_events)]
    if len(outside):
        raise TfphysError(f"{len(outside)} scored index(es) outside 0 … {n_events - 1}, e.g. {outside[:3].tolist()}")
    counts = np.bincount(index, minlength=n_events)
    missing, duplicated = np.flatnonzero(counts == 0), np.flatnonzero(counts > 1)
    problems = []
    if len(missing):
        problems.append(f"{len(missing)} event(s) never scored: {_describe(missing)}")
    if len(duplicated):
        problems.append(f"{len(duplicated)} event(s) scored more than once: {_describe(duplicated)}")
    if problems:
        raise TfphysError("; ".join(problems) + " (rerun the missing shards / remove the extra shard files)")


def merge(out_dir, files=None) -> Path:
    """Merge the shard files of ``out_dir`` (or the given ``files``) into ``out_dir/scores.h5``
    after checking that they come from one run and one data file and score every event once."""
    out_dir = Path(out_dir)
    files = sorted(Path(p) for p in files) if files else sorted(
        p for p in out_dir.glob("scores-*-of-*.h5") if _SHARD_RE.search(p.name))
    if not files:
        raise TfphysError(f"no shard files (scores-IIIII-of-NNNNN.h5) in {out_dir}")
    metas, blocks = [], []
    for p in files:
        try:
            with h5py.File(p, "r") as f:
                meta = dict(f.attrs)
                block = {k: f[k][:] for k in f if k != "scores"}
                block["scores"] = {k: f["scores"][k][:] for k in f["scores"]}
        except (OSError, KeyError) as err:
            raise TfphysError(f"{p} is not a tfphys-score shard file ({err})") from None
        metas.append(meta)
        blocks.append(block)
    for key in ("run", "data", "n_events", "n_shards", "family", "runtime"):
        values = {str(m.get(key, "keras" if key == "runtime" else None)) for m in metas}  # (older shards: Keras)
        if len(values) > 1:
            raise TfphysError(f"shard files disagree on {key}: {', '.join(sorted(values))}")
    n_events = int(metas[0]["n_events"])
    index = np.concatenate([b["index"] for b in blocks])
    check_coverage(index, n_events)
    names = [set(b["scores"]) for b, m in zip(blocks, metas) if len(b["index"])]
    if names and any(s != names[0] for s in names):
        differing = sorted(set().union(*names) - set.intersection(*names))
        raise TfphysError(f"shard files hold different scores: {differing}")
    order = np.argsort(index, kind="stable")
    path = out_dir / MERGED_NAME
    with atomic_path(path) as part, h5py.File(part, "w") as f:
        f["index"] = index[order]
        for column in (k for k in blocks[0] if k not in ("index", "scores")):
            f[column] = np.concatenate([b[column] for b in blocks])[order]
        scores = f.create_group("scores")
        for name in sorted(names[0]) if names else ():
            scores[name] = np.concatenate([b["scores"][name] for b in blocks if len(b["index"])])[order]
        f.attrs.update({k: metas[0][k] for k in ("run", "model_name", "data", "family", "n_events")})
        f.attrs["runtime"] = str(metas[0].get("runtime", "keras"))
        f.attrs["merged_shards"] = len(files)
        fault_point("mid-merge")
    return path
