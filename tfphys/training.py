"""The one trainer: config → strategy scope → ``model.fit(tf.data)`` with Keras callbacks.

Every model of every family trains through :func:`train`. A run directory holds:

==================  ==============================================================================
``model.keras``     the best model on the monitored metric (``keras.saving.load_model(path,
                    safe_mode=True)`` loads it: no Lambda layers, no pickles)
``config.toml``     the resolved config: every key the run used, defaults, data path and seed
                    included (see :mod:`tfphys.config`); ``--config RUN/config.toml`` repeats it
``history.csv``     one row per finished epoch (``CSVLogger``)
``history.png``     the same, plotted (updated after every epoch)
``backup/``         ``BackupAndRestore`` state while a run is unfinished; a rerun (or
                    ``--resume``) continues from the last finished epoch
==================  ==============================================================================

Under a ``tf.distribute`` strategy (:mod:`tfphys.distribute`) the model is built in its scope and
``[pipeline] batch_size`` is the global batch. With several workers only the chief writes the run
dir; worker *i* writes the same files to ``.worker-i/`` inside it (Keras' multi-worker pattern:
every worker saves, so no collective op is left waiting) and removes that dir when training ends.
Every worker restores from the chief's ``backup/`` when it can see it (a shared file system), else
from its own, so workers killed and restarted with the same command resume at the same epoch.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import functools
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfphys import atomic, distribute, registry
from tfphys import config as configs
from tfphys.atomic import fault_point
from tfphys.datasets import Epochs, disable_autotune
from tfphys.errors import TfphysError
from tfphys.progress import StepLines


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    model_path: Path
    history: list[dict[str, float]]
    resumed_from_epoch: int


def make_optimizer(train_cfg: dict[str, Any], total_steps: int | None = None) -> keras.optimizers.Optimizer:
    """Deserialize ``[train.optimizer]`` (``class_name`` + the optimizer's own arguments).

    Mind Keras 3's AdamW: it decays ``w -= lr · weight_decay · w``, so the paper's tf-addons
    ``1e-4`` at ``lr = 1e-3`` is ``weight_decay = 0.1`` here.

    A learning-rate schedule may give its length as a fraction of the training instead of a step
    count: ``decay_fraction = 1.0`` in ``[train.optimizer.learning_rate.config]`` becomes
    ``decay_steps = decay_fraction × total_steps`` (epochs × batches per epoch, from the trainer),
    so the schedule follows ``--epochs`` and the data size.
    """
    spec = dict(train_cfg.get("optimizer", {"class_name": "Adam"}))
    class_name = spec.pop("class_name", "Adam")
    schedule = spec.get("learning_rate")
    if isinstance(schedule, dict) and "decay_fraction" in schedule.get("config", {}):
        conf = dict(schedule["config"])
        fraction = float(conf.pop("decay_fraction"))
        if total_steps is None or total_steps <= 0:
            raise TfphysError("[train.optimizer.learning_rate] decay_fraction needs the number of "
                              "training steps, which this dataset does not know; give decay_steps")
        conf["decay_steps"] = max(1, round(fraction * total_steps))
        spec["learning_rate"] = {**schedule, "config": conf}
    try:
        return keras.optimizers.deserialize({"class_name": class_name, "config": spec})
    except (TypeError, ValueError) as err:
        raise TfphysError(f"[train.optimizer] {class_name}: {err}") from None


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of ``history.csv`` (last row per epoch wins, in case an epoch was logged twice; a row
    cut short by a kill is skipped)."""
    if not path.exists():
        return []
    rows: dict[int, dict[str, float]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if v != ""}
            except (TypeError, ValueError):  # a partial last line
                continue
    return [rows[k] for k in sorted(rows)]


def _keep_history(path: Path, epochs: int) -> list[dict[str, float]]:
    """Rewrite ``history.csv`` (atomically) with the rows of the first ``epochs`` epochs only: on
    resuming at epoch ``epochs``, a row the killed process wrote for a later epoch, or cut short,
    goes, so the resumed run appends to a file byte for byte like an uninterrupted run's."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        lines = fh.read().splitlines(keepends=True)
    kept = lines[:1]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        try:
            complete = line.endswith("\n") and len(row) == len(next(csv.reader(lines[:1]))) and int(row[0]) < epochs
        except (ValueError, IndexError):
            complete = False
        if complete:
            kept.append(line)
    atomic.write_text(path, "".join(kept) if len(kept) > 1 else "")
    return read_history(path)


class _Backup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose state is one file per finished epoch, ``backup/epoch-K.weights.h5``
    (K = epochs done), written through :class:`tfphys.atomic.atomic_path`: the weights (optimizer
    state included) and the epoch count are committed by one rename, so a kill during a save leaves
    the previous epoch's state whole (Keras writes the weights, then a JSON epoch count, in place:
    a kill between them resumed at the wrong epoch, one during them left an unreadable backup)."""

    def _state(self) -> tuple[int, Path | None]:
        files = sorted(Path(self.backup_dir).glob("epoch-*.weights.h5")) if Path(self.backup_dir).is_dir() else []
        if not files:
            return 0, None
        return int(files[-1].name.split("-")[1].split(".")[0]), files[-1]

    def _load_model(self):
        epoch, path = self._state()
        if path is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)
        self.model._initial_epoch = epoch  # what Keras' own BackupAndRestore sets

    def _save_model(self):
        backup = Path(self.backup_dir)
        backup.mkdir(parents=True, exist_ok=True)
        fault_point("mid-checkpoint")
        with atomic.atomic_path(backup / f"epoch-{self._current_epoch:05d}.weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
            fault_point("mid-checkpoint-write")
        for old in backup.glob("epoch-*.weights.h5"):
            if old.name != f"epoch-{self._current_epoch:05d}.weights.h5":
                old.unlink(missing_ok=True)


class _PublishBest(keras.callbacks.Callback):
    """``ModelCheckpoint`` saves the best model in place, under a temporary name; after it, this
    renames the file onto ``backup/best.keras`` (so a kill mid-save never leaves a truncated model),
    and when training ends, onto ``model.keras``: ``model.keras`` appears only in a finished run."""

    def __init__(self, best: atomic.atomic_path, final: Path):
        super().__init__()
        self.best, self.final = best, final

    def on_epoch_end(self, epoch, logs=None):
        if self.best.tmp.exists():
            self.best.commit()
            self.best.open()

    def on_train_end(self, logs=None):
        self.best.abort()
        if self.best.final.exists():
            atomic.rename(self.best.final, self.final)


class _PlotHistory(keras.callbacks.Callback):
    """Redraw ``history.png`` from ``history.csv`` after every epoch (so a long run can be watched)."""

    def __init__(self, out: Path, title: str):
        super().__init__()
        self.out, self.title = out, title

    def on_epoch_end(self, epoch, logs=None):
        from tfphys.reports import plot_history

        history = read_history(self.out / "history.csv")
        if history:
            plot_history(history, self.out / "history.png", title=self.title)


def _best(history, monitor, mode):
    values = [row[monitor] for row in history if monitor in row and math.isfinite(row[monitor])]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def _saved_config(spec, path: Path) -> dict | None:
    """The resolved config saved in ``path`` (None: none, or one this version no longer accepts)."""
    if not path.exists():
        return None
    try:
        return configs.resolve(spec, configs.load(path), partial=True)
    except TfphysError:
        return {}


def _prepare_out_dir(out: Path, cfg: dict, resume: bool, spec=None) -> bool:
    """Decide between a fresh run and a resumed one; never overwrite a finished run."""
    backup = out / "backup"
    has_backup = _backup_epoch(backup) > 0
    if has_backup:
        saved = _saved_config(spec or registry.get(cfg["model_name"]), out / "config.toml")
        if saved is not None and _comparable(saved) != _comparable(cfg):
            raise TfphysError(
                f"{out} holds an unfinished run with a different config; resume it with the same "
                f"options (see {out / 'config.toml'}) or choose another --out"
            )
        return True
    if resume:
        raise TfphysError(f"nothing to resume in {out}: no unfinished run (no {backup})")
    if (out / "model.keras").exists():
        raise TfphysError(f"{out} already holds a finished run (model.keras); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.csv").unlink(missing_ok=True)
    shutil.rmtree(backup, ignore_errors=True)  # what a run killed before its first epoch ended left
    return False


def _prepare_worker_dir(out: Path, work: Path, resume: bool) -> bool:
    """A non-chief worker's dir ``work`` inside the run dir ``out``: the same decision as the
    chief's :func:`_prepare_out_dir` (resume or start), taken from the chief's files when this
    worker sees them; the chief's backup, when visible, replaces the worker's own."""
    chief_backup, backup = out / "backup", work / "backup"
    if _backup_epoch(chief_backup):
        shutil.rmtree(backup, ignore_errors=True)
        shutil.copytree(chief_backup, backup)
    has_backup = _backup_epoch(backup) > 0
    if not has_backup:
        if resume:
            raise TfphysError(f"nothing to resume in {out}: no unfinished run (no {chief_backup})")
        if (out / "model.keras").exists():
            raise TfphysError(f"{out} already holds a finished run (model.keras); choose another --out")
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return has_backup


def _comparable(cfg):
    """A resolved config without the keys that may legitimately change on resume (only the epoch
    count)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    out.get("train", {}).pop("epochs", None)
    return out


def train(model_name: str, cfg: dict[str, Any], out_dir, *, data=None, resume: bool = False,
          verbose: int | str = "auto", callbacks: Sequence[keras.callbacks.Callback] = (),
          strategy: tf.distribute.Strategy | None = None) -> RunResult:
    """Train ``model_name`` with the resolved ``cfg`` into ``out_dir``.

    ``cfg``: a whole config, checked against the model's schema and completed with its defaults
    (:func:`tfphys.config.resolve`) before anything is read or written.
    ``data``: an HDF5 file of the model's family; without it (and without ``[data] path``) the
    model's default dataset is generated once with a fixed seed and cached.
    ``callbacks``: extra Keras callbacks (e.g. for tests or monitoring).
    ``strategy``: a ``tf.distribute`` strategy (:func:`tfphys.distribute.make_strategy`, created
    before any other TensorFlow op); default: the current one.
    """
    spec = registry.get(model_name)
    strategy = strategy or tf.distribute.get_strategy()
    if spec.single_replica and strategy.num_replicas_in_sync > 1:
        raise TfphysError(f"{model_name} trains on one replica only ({spec.single_replica}); "
                          f"this strategy has {strategy.num_replicas_in_sync}")
    role = distribute.role(strategy)
    cfg = configs.resolve(spec, cfg)  # a new dict: the caller's stays as it was
    out = Path(out_dir)
    seed = int(cfg["train"]["seed"])
    epochs = int(cfg["train"]["epochs"])
    if epochs <= 0:
        raise TfphysError(f"--epochs must be positive, got {epochs}")

    data = data or cfg["data"]["path"]
    if not spec.reads_data:
        if data:
            raise TfphysError(f"{model_name} reads no data file (it makes its own: {spec.description}); "
                              f"drop --data / [data] path (got {data})")
        path = None
    else:
        path = Path(data) if data else spec.default_data(cfg)
        cfg["data"]["path"] = str(path.resolve())
    cfg = {"model_name": model_name, **cfg}

    # The data are opened (and validated) before anything is written: a refused file leaves no run dir.
    keras.utils.set_random_seed(seed)
    # Epochs (each a pure function of seed and epoch: a resumed run sees the uninterrupted run's
    # batches) when the family has them; the stream starts at the resumed epoch (_training_stream).
    train_ds, val_ds = (spec.epochs or spec.datasets)(cfg, path, seed)
    # No autotuning thread: with it, every new epoch waited up to a minute (see disable_autotune).
    val_ds = disable_autotune(val_ds)
    if isinstance(train_ds, Epochs):
        train_ds = train_ds.without_last_batch_under(role.num_workers)
    else:
        train_ds = disable_autotune(train_ds)

    # Non-chief workers write to a dir of their own inside the run dir (removed at the end).
    work = out if role.is_chief else out / f".worker-{role.task_id}"
    # The model is built (and its [model] / [train] tables checked) before anything is written:
    # a refused config, like a refused data file, leaves no run dir.
    if not distribute.is_default(strategy):
        val_ds = distribute.shard_dataset(val_ds)
        if not isinstance(train_ds, Epochs):
            train_ds = distribute.shard_dataset(train_ds)

    with strategy.scope():
        model = registry.build(spec, configs.build_kwargs(spec, cfg))  # [train] seed to a builder's seed
        # per epoch; < 0 when the pipeline cannot tell
        steps = train_ds.steps if isinstance(train_ds, Epochs) else int(train_ds.cardinality())
        optimizer = make_optimizer(cfg["train"], total_steps=epochs * steps if steps > 0 else None)
        distribute.check_optimizer(optimizer, strategy)
        model.compile(optimizer=optimizer, loss=spec.loss(), metrics=spec.metrics())
        # The optimizer's slots made now (zeros, as a resumed run's _Backup does before loading):
        # made inside the first train step instead, they make tf.function trace that step twice
        # (once creating the variables, once without) — measured: a tiny CoDAE's first epoch 25 → 12 s CPU.
        if model.built and model.trainable_variables and not optimizer.built:
            optimizer.build(model.trainable_variables)
    distribute.prepare_model(model, strategy, train_ds.element_spec)
    val_ds = distribute.skip_tiny_batches(val_ds, strategy)
    if not isinstance(train_ds, Epochs):
        train_ds = distribute.skip_tiny_batches(train_ds, strategy)
    # from the first epoch not yet done: known once the run dir is locked and read (_fit)
    train_ds = functools.partial(_training_stream, train_ds, epochs=epochs, strategy=strategy)

    created = not work.exists()
    lock = _lock(work)  # a second tfphys-train on this run dir refuses here, before writing anything
    try:
        if role.is_chief:
            resuming = _prepare_out_dir(out, cfg, resume, spec)
        else:
            resuming = _prepare_worker_dir(out, work, resume)
        try:
            return _fit(spec, model, cfg, out, work, resuming, train_ds, val_ds, epochs, role,
                        verbose, callbacks)
        except BaseException:
            if role.is_chief and not _backup_epoch(work / "backup") and not (out / "model.keras").exists():
                _discard(out, created)  # no epoch finished: nothing to resume, leave nothing behind
            raise
    finally:
        lock.close()


def _lock(work: Path):
    """Hold ``work/.lock`` (``fcntl.flock``; the kernel releases it when the process dies, so a killed
    run never leaves it stuck); a TfphysError when another process holds it."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / ".lock"
    while True:
        fh = open(path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise TfphysError(f"{work} is being written by another tfphys-train (pid {holder}); wait for it "
                              "to finish, or choose another --out") from None
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file that its holder removed (with the run dir) while we waited
            break
        fh.close()
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def _backup_epoch(backup: Path) -> int:
    """Epochs done according to the committed backup state (0: none)."""
    files = sorted(backup.glob("epoch-*.weights.h5")) if backup.is_dir() else []
    return int(files[-1].name.split("-")[1].split(".")[0]) if files else 0


def _discard(out: Path, created: bool) -> None:
    """Remove what a run that finished no epoch wrote into ``out`` (the whole dir if it made it)."""
    if created:
        shutil.rmtree(out, ignore_errors=True)
        return
    for name in ("config.toml", "history.csv", "history.png"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "backup", ignore_errors=True)


def _training_stream(data, first: int, *, epochs: int, strategy) -> tuple[tf.data.Dataset, int | None]:
    """The training dataset for ``fit`` from epoch ``first`` on, and its ``steps_per_epoch``: epochs
    ``first … epochs − 1`` of an :class:`~tfphys.datasets.Epochs` (so a resumed run's epoch k is the
    uninterrupted run's), or a plain dataset that ``fit`` iterates anew every epoch."""
    if not isinstance(data, Epochs):
        return data, None
    stream = disable_autotune(data.stream(first, epochs))
    if not distribute.is_default(strategy):
        stream = distribute.shard_dataset(stream)
    return stream, data.steps


def _fit(spec, model, cfg, out, work, resuming, train_ds, val_ds, epochs, role, verbose, callbacks):
    if role.is_chief:
        configs.save(cfg, out / "config.toml")
    history_path = work / "history.csv"
    done = _backup_epoch(work / "backup") if resuming else 0
    train_ds, steps_per_epoch = train_ds(done)  # _training_stream
    if resuming:
        source = history_path if history_path.exists() else out / "history.csv"
        past = _keep_history(source, done) if source == history_path else read_history(source)[:done]
    else:
        past = []

    model_path = work / "model.keras"
    best = atomic.atomic_path(work / "backup" / "best.keras")
    best.open()
    cbs = [
        # ModelCheckpoint and CSVLogger before the backup: a kill between them redoes the epoch
        keras.callbacks.ModelCheckpoint(
            str(best.tmp), monitor=spec.monitor, mode=spec.mode, save_best_only=True,
            initial_value_threshold=_best(past, spec.monitor, spec.mode), verbose=0,
        ),
        _PublishBest(best, model_path),
        keras.callbacks.CSVLogger(str(history_path), append=True),
        keras.callbacks.TerminateOnNaN(),
        *([_PlotHistory(out, f"{spec.name} — {out}")] if role.is_chief else []),
        _Backup(str(work / "backup")),  # the commit point of an epoch
        _FaultPoints(),
        *callbacks,
    ]
    if verbose == "auto":
        # A terminal gets Keras's bar; a log gets a line every ~10 s (StepLines) and Keras's
        # end-of-epoch summary, instead of a whole epoch of silence.
        verbose = 1 if sys.stdout.isatty() else 2
        if verbose == 2 and role.is_chief:
            batch = cfg.get("pipeline", {}).get("batch_size")
            cbs.append(StepLines(batch_size=int(batch) if batch else None))
    try:
        model.fit(train_ds, validation_data=val_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                  callbacks=cbs, verbose=verbose,
                  shuffle=False)  # the pipeline shuffles
    finally:
        best.abort()
    history = read_history(history_path)
    if not model_path.exists():
        raise TfphysError(f"training produced no finite {spec.monitor}; no model was saved in {out}")
    if not role.is_chief:
        shutil.rmtree(work, ignore_errors=True)
    return RunResult(out, out / "model.keras", history, len(past))


class _FaultPoints(keras.callbacks.Callback):
    """Named kill points of ``tests/core/test_faults.py`` (:func:`tfphys.atomic.fault_point`)."""

    def on_train_batch_end(self, batch, logs=None):
        fault_point("mid-epoch")

    def on_epoch_end(self, epoch, logs=None):
        fault_point("epoch-end")
