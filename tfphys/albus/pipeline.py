"""``tf.data`` pipeline for ALBUS maps — paper §III.A.

    HDF5 maps (uint8 RGB) ──read──► cache ──shuffle──► batch of B/2 backgrounds ─┐
                                                       batch of B/2 chirps ──────┴─► interleave (B, T, F, 3)
                                                                                     ──► (x / 255, target)

Every training batch is half background (time-slide) maps, half chirp maps (the paper: batches of
20, 10 + 10); the smaller class repeats so that an epoch sees every map of the larger one. The
validation set is 10 % of each class, in file order. Glitch maps (kind 2) are never trained on.
A batch alternates background, chirp, background, chirp, …: any contiguous slice of it — the
share of one replica under ``tf.distribute``'s ``DATA`` sharding — is balanced too, so every
replica's BatchNormalization statistics see both classes.
Targets are divided by their own peak by default (``target="max"``, §II.B "we then normalize").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h5py
import numpy as np
import tensorflow as tf

from tfphys.albus import storage
from tfphys.datasets import Epochs, Split, check_val_fraction, epoch_seed, seeded_shuffle, split_by_class
from tfphys.errors import TfphysError


@dataclass(frozen=True)
class MapSplit:
    """The split of each class of an ALBUS file — background and chirp maps, one :class:`Split` each —
    and the maps' (T, F) shape."""

    background: Split
    chirp: Split
    shape: tuple[int, int]

    train_background = property(lambda self: self.background.train)
    train_chirp = property(lambda self: self.chirp.train)
    val_background = property(lambda self: self.background.val)
    val_chirp = property(lambda self: self.chirp.val)


def split_maps(path, *, val_fraction: float = 0.1, seed: int = 0, max_maps: int | None = None) -> MapSplit:
    """Seeded split of each class (background, chirp) into training and validation indices; ⌈val_fraction · n⌉
    of each class are held out."""
    check_val_fraction(val_fraction)
    with storage.open_albus(path) as f:
        kind = f["kind"][:]
        shape = tuple(f["maps"].shape[1:3])
    if max_maps is not None:
        kind = kind[: int(max_maps)]
    names = {0: "background", 1: "chirp"}
    parts = split_by_class(
        kind, names, val_fraction, seed=seed, rounding=math.ceil,
        too_few=lambda k, n: f"data file {path} has {n} {names[k]} maps: need at least 2 for a training and a "
                             f"validation map (build more with `tfphys-data albus`)")
    return MapSplit(parts[0], parts[1], shape)


class _Reader:
    """Reads one map (uint8 RGB) and its target (float16) by index; one open file per process."""

    def __init__(self, path):
        self.path = str(path)
        self._file = None

    def __call__(self, i):
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        i = int(i)
        return self._file["maps"][i], self._file["targets"][i]


def read_maps(path, indices) -> tuple[np.ndarray, np.ndarray]:
    """Maps as the network sees them, float32 ``(n, T, F, 3)`` in [0, 1], and targets ``(n, T, F, 1)``."""
    indices = np.asarray(indices)
    order = np.argsort(indices)
    with storage.open_albus(path) as f:
        maps = f["maps"][indices[order]]
        targets = f["targets"][indices[order]]
    inverse = np.argsort(order)
    return (maps[inverse].astype(np.float32) / 255.0, targets[inverse].astype(np.float32)[..., None])


def maps_dataset(path, indices, shape) -> tf.data.Dataset:
    """(uint8 map (T, F, 3), float16 target (T, F)) per index, read from the file."""
    reader = _Reader(path)
    t, f = shape

    def read(i):
        m, y = tf.numpy_function(reader, [i], (tf.uint8, tf.float16))
        return tf.ensure_shape(m, (t, f, 3)), tf.ensure_shape(y, (t, f))

    return tf.data.Dataset.from_tensor_slices(np.asarray(indices, np.int64)).map(read)


def to_model(m, y):
    """uint8 RGB → float32 in [0, 1]; target → (T, F, 1) float32."""
    return tf.cast(m, tf.float32) / 255.0, tf.cast(y, tf.float32)[..., None]


TARGETS = ("max", "raw")


def normalise_targets(y):
    """§II.B "we then normalize": each target map divided by its own maximum (peak 1; empty stays 0).

    ``y``: (B, ...) float, normalised per leading index. The stored targets keep the signal's
    absolute contribution D (``injections.target_map``); dividing by the map's peak keeps the
    intensity profile *along* the chirp (what §II.B wants the target to follow) and gives every
    chirp map a peak of 1 — the raw D peaks at 0.2–0.8 (0.2–0.45 at V = 12 in the quick set) with a
    mean of ~0.01 on its 1 % of pixels: up to 25× less squared error to learn from.
    """
    y = tf.convert_to_tensor(y, tf.float32)
    peak = tf.reduce_max(y, axis=tf.range(1, tf.rank(y)), keepdims=True)
    return tf.math.divide_no_nan(y, peak)


def _alternate(a, b):
    """``a[0], b[0], a[1], b[1], …`` along the batch axis (``a`` and ``b`` of the same shape)."""
    return tf.reshape(tf.stack([a, b], axis=1), [-1, *a.shape[1:]])


def albus_datasets(path, *, batch_size: int = 20, seed: int = 0, **options):
    """:func:`albus_epochs` with the training set as one dataset, reshuffled on every iteration."""
    train, val = albus_epochs(path, batch_size=batch_size, seed=seed, **options)
    return train.reshuffled(seed), val


def albus_epochs(path, *, batch_size: int = 20, seed: int = 0, val_fraction: float = 0.1,
                 max_maps: int | None = None, cache: bool = True, target: str = "max"):
    """(training :class:`~tfphys.datasets.Epochs`, validation dataset) of ``(x (B, T, F, 3), target (B, T, F, 1))``;
    epoch e's order is a pure function of ``(seed, e)``.

    ``target``: ``"max"`` divides each stored target by its peak (:func:`normalise_targets`),
    ``"raw"`` uses the stored D as is.
    """
    if batch_size < 2 or batch_size % 2:
        raise TfphysError(f"batch_size must be even (half background, half chirps), got {batch_size}")
    if target not in TARGETS:
        raise TfphysError(f"[pipeline] target must be one of {', '.join(TARGETS)}, got {target!r}")

    def prepare(m, y):
        x, t = to_model(m, y)
        return x, (normalise_targets(t) if target == "max" else t)

    split = split_maps(path, val_fraction=val_fraction, seed=seed, max_maps=max_maps)
    half = batch_size // 2

    def maps(indices):
        ds = maps_dataset(path, indices, split.shape)
        return ds.cache() if cache else ds  # uint8: 0.5 MB per 166 × 1025 map

    def half_batches(ds, n, e, salt):
        # reshuffled on each pass of the repeat, from a seed of (seed, epoch, class)
        ds = seeded_shuffle(ds, n, epoch_seed(seed, e, salt), reshuffle_each_iteration=True).repeat()
        return ds.batch(half, drop_remainder=True)

    steps = math.ceil(max(len(split.train_background), len(split.train_chirp)) / half)
    background, chirp = maps(split.train_background), maps(split.train_chirp)

    def one_epoch(e):
        return (tf.data.Dataset.zip(half_batches(background, len(split.train_background), e, 1),
                                    half_batches(chirp, len(split.train_chirp), e, 2))
                .map(lambda b, c: (_alternate(b[0], c[0]), _alternate(b[1], c[1])))
                .take(steps).map(prepare))

    train = Epochs(one_epoch, steps * batch_size, batch_size)
    val_idx = np.concatenate([split.val_background, split.val_chirp])
    val = maps_dataset(path, val_idx, split.shape)
    if cache:
        val = val.cache()
    val = val.batch(batch_size).map(prepare).prefetch(2)
    return train, val
