"""What every family's ``tf.data`` pipeline shares: the training/validation split of a file's items
(:class:`Split`, :func:`check_val_fraction`, :func:`split_indices`, :func:`split_by_class`) and the
dataset options, and :class:`Epochs`: a training set whose every epoch is a pure function of the
run's seed and the epoch index (so a resumed run sees the batches an uninterrupted one sees).
The pipelines themselves (read files, preprocess, augment, batch) live in each
family's ``pipeline`` module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfphys.errors import TfphysError


@dataclass(frozen=True)
class Split:
    """Indices of a file's items (events, maps, waveforms) selected for training and for validation."""

    train: np.ndarray
    val: np.ndarray

    @property
    def n_train(self) -> int:
        return len(self.train)

    @staticmethod
    def merge(parts: Iterable[Split]) -> Split:
        """One split of the union of ``parts`` (e.g. one per class), each side sorted."""
        parts = list(parts)
        return Split(train=np.sort(np.concatenate([p.train for p in parts])),
                     val=np.sort(np.concatenate([p.val for p in parts])))


def check_val_fraction(val_fraction: float) -> float:
    """``val_fraction`` as a float, or the one error for every family when it is not in (0, 1)."""
    if not 0 < val_fraction < 1:
        raise TfphysError(f"[data] val_fraction must lie in (0, 1), got {val_fraction}")
    return float(val_fraction)


def split_indices(indices, val_fraction: float, *, rng: np.random.Generator | None = None,
                  rounding: Callable[[float], int] = round, too_few: str | None = None) -> Split:
    """Split ``indices`` into training and validation parts, ``rounding(val_fraction · n)`` for validation.

    With ``rng``: at random — the first ``n_val`` of ``rng.permutation(indices)`` are held out, each
    part sorted. Without: contiguously — the last ``n_val`` are held out, in order. ``rounding`` is
    Python's ``round`` (half to even) or ``math.ceil``. Both parts must be non-empty, else
    ``TfphysError(too_few)``.
    """
    check_val_fraction(val_fraction)
    indices = np.asarray(indices)
    n_val = int(rounding(val_fraction * len(indices)))
    if n_val < 1 or n_val >= len(indices):
        raise TfphysError(too_few or f"{len(indices)} items cannot be split into training and validation "
                                     f"parts with val_fraction={val_fraction}")
    if rng is None:
        return Split(train=indices[: len(indices) - n_val], val=indices[len(indices) - n_val:])
    perm = rng.permutation(indices)
    return Split(train=np.sort(perm[n_val:]), val=np.sort(perm[:n_val]))


def split_by_class(labels, classes, val_fraction: float, *, seed: int, rounding: Callable[[float], int] = round,
                   too_few: Callable[[object, int], str] | None = None) -> dict:
    """A stratified random split: ``{c: Split of the items labelled c}`` for each of ``classes`` in turn,
    all drawn from one generator seeded with ``seed``. ``too_few(c, n)``: the error message when class
    ``c``'s ``n`` items cannot be split (see :func:`split_indices`).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = {}
    for c in classes:
        idx = np.flatnonzero(labels == c)
        parts[c] = split_indices(idx, val_fraction, rng=rng, rounding=rounding,
                                 too_few=too_few(c, len(idx)) if too_few else None)
    return parts


def disable_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` without tf.data's autotuning model (its background optimisation thread).

    Why: under TF 2.21, when Keras drops an epoch's iterator (``fit`` makes a new one per epoch),
    the iterator's destructor waits until that thread's current timed wait runs out, and the wait
    grows to tens of seconds over a long epoch; the whole process sits idle meanwhile. Measured with
    the trainer: 30–35 s idle before CBAE epochs 2 and 3 (~50 s each), 55 s before CoDAE's epoch 2
    (tools/README.md, "bench_cbae.py"; a plain Keras reproducer: tools/bench_epoch_gap.py).
    Without the model, ``num_parallel_calls = AUTOTUNE`` runs as many calls as there are cores and
    ``prefetch(AUTOTUNE)`` keeps its own buffer autotuner, which needs no thread.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def epoch_seed(seed: int, epoch, salt: int = 0) -> tf.Tensor:
    """The stateless seed, ``(2,)`` int64, of epoch ``epoch`` of a run seeded ``seed``; ``salt`` separates
    the streams one epoch draws (order, augmentation, one class or another)."""
    return tf.random.experimental.stateless_fold_in(tf.constant([seed, salt], tf.int64), tf.cast(epoch, tf.int64))


def shuffle_seed(seed: tf.Tensor) -> tf.Tensor:
    """An int64 scalar for ``Dataset.shuffle(seed=…)`` drawn from a stateless ``(2,)`` seed."""
    return tf.random.stateless_uniform((), seed, minval=None, maxval=None, dtype=tf.int64)


def seeded_shuffle(ds: tf.data.Dataset, buffer_size: int, seed: tf.Tensor, *,
                   reshuffle_each_iteration: bool = False) -> tf.data.Dataset:
    """``ds.shuffle(buffer_size)`` with its seed drawn from the stateless ``(2,)`` ``seed`` alone.

    Why not ``ds.shuffle(seed=shuffle_seed(seed))`` directly: inside a ``flat_map`` the seed is a
    symbolic tensor, and ``random_seed.get_seed`` pairs it with the global seed and tests the pair
    against ``(0, 0)`` — a Python ``bool`` of a symbolic tensor, an error whenever the global seed is 0
    (``keras.utils.set_random_seed(0)``, every model's default ``[train] seed``). With the graph's
    seed cleared while the op is made, the order depends on ``seed`` only, not on the global seed.
    """
    graph = tf.compat.v1.get_default_graph()
    saved = graph.seed
    graph.seed = None
    try:
        return ds.shuffle(buffer_size, seed=shuffle_seed(seed), reshuffle_each_iteration=reshuffle_each_iteration)
    finally:
        graph.seed = saved


@dataclass(frozen=True)
class Epochs:
    """A training set whose epoch ``e`` (order and augmentation) is a pure function of the run's seed and ``e``.

    Why: ``shuffle(reshuffle_each_iteration=True)`` draws epoch k's order from a generator that a fresh
    pipeline restarts, so a run resumed at epoch k saw epoch 0's order again. Here the trainer asks for
    epochs ``k … E − 1`` (:meth:`stream`) and each draws from :func:`epoch_seed` ``(seed, e)``.

    ``one_epoch(e)``: the batches of epoch ``e`` (int64 scalar tensor), ``examples`` items in batches of
    ``batch_size`` (the last may be smaller).
    """

    one_epoch: Callable[[tf.Tensor], tf.data.Dataset]
    examples: int
    batch_size: int

    @property
    def steps(self) -> int:
        """Batches per epoch."""
        return -(-self.examples // self.batch_size)

    @property
    def last_batch(self) -> int:
        return self.examples - (self.steps - 1) * self.batch_size

    @property
    def element_spec(self):
        return self.epoch(0).element_spec

    def epoch(self, e: int) -> tf.data.Dataset:
        """The batches of epoch ``e`` alone."""
        return self.stream(e, e + 1).apply(tf.data.experimental.assert_cardinality(self.steps))

    def stream(self, first: int, last: int) -> tf.data.Dataset:
        """Epochs ``first … last − 1`` one after the other, for ``fit(…, steps_per_epoch=steps)`` (its
        length left unknown: Keras then keeps one iterator for all epochs, none made again at the end)."""
        return tf.data.Dataset.range(first, last).flat_map(self.one_epoch).prefetch(tf.data.AUTOTUNE)

    def reshuffled(self, seed: int) -> tf.data.Dataset:
        """One epoch per iteration, a new one each time (as ``reshuffle_each_iteration=True``), for
        direct use (tests, benchmarks); the trainer uses :meth:`stream`."""
        key = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        return (key.flat_map(self.one_epoch).apply(tf.data.experimental.assert_cardinality(self.steps))
                .prefetch(tf.data.AUTOTUNE))

    def without_last_batch_under(self, n: int) -> Epochs:
        """The same epochs without a last batch of fewer than ``n`` items (see
        :func:`tfphys.distribute.skip_tiny_batches`): every epoch keeps ``steps`` batches exactly."""
        if not 0 < self.last_batch < n or self.steps == 1:
            return self
        steps = self.steps - 1
        return Epochs(lambda e: self.one_epoch(e).take(steps), steps * self.batch_size, self.batch_size)
