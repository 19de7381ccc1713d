"""``tf.data`` pipeline for dark-shower images — CoDAE paper, Algorithm 1 and §4.2.

    HDF5 events ──read blocks──► (B, 360, 286, 3) ──Algorithm 1──► (72, 58, 1) masks ──cache──►
    shuffle ──augment (one of six per image)──► batch ──prefetch──► (x, x) for an auto-encoder

Everything random draws from the run's seed and the epoch index (:class:`tfphys.datasets.Epochs`), so
the same seed gives the same batches, and a resumed run's epoch k equals an uninterrupted run's.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tfphys.darkshowers import format as formats
from tfphys.datasets import Epochs, Split, check_val_fraction, epoch_seed, seeded_shuffle, split_by_class, split_indices
from tfphys.errors import TfphysError

DOWNSAMPLE = 5
MASK_SHAPE = (72, 58, 1)
ROLL_STEP = 8   # φ-roll in chunks of 8 rows (§4.2: Δ ∈ {8, 16, …, 56})
ROLL_MAX_K = 7
AUGMENTATIONS = ("none", "flip", "roll_up", "roll_down", "flip_roll_up", "flip_roll_down")


def downsample(images: tf.Tensor, k: int = DOWNSAMPLE) -> tf.Tensor:
    """Algorithm 1, lines 1–2: sum each channel over non-overlapping ``k × k`` blocks.

    ``(B, 360, 286, C)`` → ``(B, 72, 58, C)`` with 'SAME' zero-padding (286 → 290 columns, two on
    each side), so every pixel falls in exactly one block and the summed energy is preserved.
    """
    channels = images.shape[-1]
    kernel = tf.ones((k, k, channels, 1), dtype=images.dtype)
    return tf.nn.depthwise_conv2d(images, kernel, strides=(1, k, k, 1), padding="SAME")


def preprocess(images: tf.Tensor, k: int = DOWNSAMPLE) -> tf.Tensor:
    """Algorithm 1: down-sample, keep the tracker channel only, mask ``> 0``.

    Input ``(B, 360, 286, 3)`` deposits in GeV; output ``(B, 72, 58, 1)`` float32 in {0, 1}.
    """
    tracker = downsample(images, k)[..., :1]
    return tf.cast(tracker > 0, tf.float32)


def augment(mask: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """§4.2: apply one of six augmentations drawn uniformly with a stateless ``seed`` (shape (2,)).

    ``none``, η-flip (mirror the columns), φ-roll by ``8·k`` rows (k = 1…7) up or down with
    wrap-around, or flip then roll. Each is a permutation of pixels: hits and energy are
    preserved. Input and output ``(72, 58, 1)``.
    """
    which = tf.random.stateless_uniform((), seed, maxval=len(AUGMENTATIONS), dtype=tf.int32)
    k = tf.random.stateless_uniform(
        (), tf.stack([seed[0], seed[1] + 1]), minval=1, maxval=ROLL_MAX_K + 1, dtype=tf.int32
    )
    mask = tf.cond(tf.gather(tf.constant(_FLIP), which) > 0, lambda: tf.reverse(mask, axis=[1]), lambda: mask)
    return tf.roll(mask, shift=tf.gather(tf.constant(_ROLL_SIGN), which) * ROLL_STEP * k, axis=0)


# Per augmentation in AUGMENTATIONS: mirror η? and roll direction in φ (roll_up moves rows
# towards row 0, i.e. shift −8k; roll_down towards the last row, +8k; wrap-around either way).
_FLIP = (0, 1, 0, 0, 1, 1)  # plain tuples: no TensorFlow op at import (a multiworker strategy must come first)
_ROLL_SIGN = (0, 0, -1, 1, -1, 1)


def split_events(path, *, classes=(0,), val_fraction: float = 0.1, max_events: int | None = None,
                 seed: int = 0) -> Split:
    """Pick events of the given classes (default: QCD only) and split them at random.

    Training is background-only (paper §4.7); validation is a background-only hold-out used for
    model selection on SSIM.
    """
    check_val_fraction(val_fraction)
    with formats.open_darkshowers(path) as f:
        labels = f["label"][:]
    idx = np.flatnonzero(np.isin(labels, classes))
    if max_events is not None:
        idx = idx[:max_events]
    return split_indices(idx, val_fraction, rng=np.random.default_rng(seed),
                         too_few=f"data file {path} has {len(idx)} events of class(es) {list(classes)}: too few "
                                 f"for a training/validation split with val_fraction={val_fraction}")


class _BlockReader:
    """Read a block of events (sorted indices) from the ``images`` dataset, checking finiteness."""

    def __init__(self, path, blocks: list[np.ndarray]):
        self.path = os.fspath(path)
        self.blocks = blocks
        self._file = None

    def __call__(self, b):
        if self._file is None:
            self._file = formats.open_darkshowers(self.path)
        idx = self.blocks[int(b)]
        images = self._file["images"][idx[0]: idx[-1] + 1][idx - idx[0]]
        if not (images.min(initial=0.0) >= 0 and images.max(initial=0.0) < np.inf):  # NaN, ±inf or < 0 somewhere
            formats.check_pixels(images, self.path, idx)  # (two passes, no temporaries: the common case)
        return images.astype(np.float32, copy=False)


def masks(path, indices: np.ndarray, *, read_block: int = 64, k: int = DOWNSAMPLE) -> tf.data.Dataset:
    """Dataset of preprocessed masks ``(72, 58, 1)`` uint8 for ``indices`` (in that order).

    Events are read in blocks of ``read_block`` consecutive indices (one contiguous HDF5 slice
    each) and Algorithm 1 runs on whole blocks.
    """
    indices = np.asarray(indices, dtype=np.int64)
    blocks = [indices[i: i + read_block] for i in range(0, len(indices), read_block)]
    reader = _BlockReader(path, blocks)

    def read(b):
        images = tf.numpy_function(reader, [b], tf.float32, stateful=False)
        images.set_shape((None, *formats.IMAGE_SHAPE))
        return tf.cast(preprocess(images, k), tf.uint8)

    ds = tf.data.Dataset.range(len(blocks)).map(read, num_parallel_calls=1)
    # unbatch() forgets the length; Keras needs it to show progress and count steps.
    return ds.unbatch().apply(tf.data.experimental.assert_cardinality(len(indices)))


def _epoch(train, n: int, seed: int, e, shuffle_buffer: int, augmentation: bool, augment_first):
    """Epoch ``e`` of the cached training elements ``train`` (``n`` of them): shuffled with a seed of
    ``(seed, e)``, element i augmented with a stateless seed of ``(seed, e, i)``."""
    ds = seeded_shuffle(train, min(shuffle_buffer, n), epoch_seed(seed, e))
    if not augmentation:
        return ds
    draws = epoch_seed(seed, e, salt=1)
    return tf.data.Dataset.zip(ds, tf.data.Dataset.range(n)).map(
        lambda x, i: augment_first(x, tf.random.experimental.stateless_fold_in(draws, i)),
        num_parallel_calls=tf.data.AUTOTUNE)


def autoencoder_datasets(path, *, batch_size: int, seed: int, **options) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """:func:`autoencoder_epochs` with the training set as one dataset, reshuffled on every iteration."""
    train, val = autoencoder_epochs(path, batch_size=batch_size, seed=seed, **options)
    return train.reshuffled(seed), val


def autoencoder_epochs(
    path, *, batch_size: int, seed: int, classes=(0,), val_fraction: float = 0.1,
    max_events: int | None = None, shuffle_buffer: int = 10_000, augmentation: bool = True,
    read_block: int = 64, cache: bool = True, signal_fraction: float = 0.0,
) -> tuple[Epochs, tf.data.Dataset]:
    """Training epochs and validation dataset of ``(mask, mask)`` batches for an auto-encoder.

    Training: masks of ``classes`` (QCD only by default) → cache → shuffle → augment → batch.
    Validation: the held-out events, neither shuffled nor augmented.
    ``signal_fraction`` > 0: weak supervision — the training split is contaminated with signal
    events (see :func:`contaminate`); validation stays background-only.
    Shapes: ``(batch, 72, 58, 1)`` float32 in {0, 1}.
    """
    split = split_events(path, classes=classes, val_fraction=val_fraction,
                         max_events=max_events, seed=seed)
    if signal_fraction:
        split = contaminate(path, split, signal_fraction, background=classes, seed=seed)

    def as_pair(x):
        x = tf.cast(x, tf.float32)
        return x, x

    train = masks(path, split.train, read_block=read_block)
    val = masks(path, split.val, read_block=read_block)
    if cache:
        train, val = train.cache(), val.cache()
    n = len(split.train)

    def one_epoch(e):
        return _epoch(train, n, seed, e, shuffle_buffer, augmentation, augment).map(as_pair).batch(batch_size)

    val = val.map(as_pair).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return Epochs(one_epoch, n, batch_size), val



def contaminate(path, split: Split, signal_fraction: float, *, background=(0,), seed: int = 0) -> Split:
    """Weak supervision (Dirichlet VAE, paper §5.2: "background contaminated with 0.01 % of the
    signals"): add signal events to the training split so that they make up ``signal_fraction`` of it.

    The signal pool is every event whose label is not in ``background`` and not already in the
    split; ``n_s = round(f · n_b / (1 − f))`` events are drawn from it at random (all signal
    processes and mass points alike), at least one when ``f > 0`` — at 0.01 % one signal event needs
    ~10⁴ background events, so small files get one. Validation indices are unchanged.
    """
    if not 0 <= signal_fraction < 1:
        raise TfphysError(f"signal_fraction must lie in [0, 1), got {signal_fraction}")
    if signal_fraction == 0:
        return split
    with formats.open_darkshowers(path) as f:
        labels = f["label"][:]
    pool = np.setdiff1d(np.flatnonzero(~np.isin(labels, background)), np.concatenate([split.train, split.val]))
    n_signal = max(1, int(round(signal_fraction * len(split.train) / (1.0 - signal_fraction))))
    if len(pool) < n_signal:
        raise TfphysError(
            f"data file {path} has {len(pool)} signal events; contaminating {len(split.train)} background "
            f"events with signal_fraction={signal_fraction} needs {n_signal} (generate with --process all)")
    chosen = np.random.default_rng([seed, 1]).choice(pool, n_signal, replace=False)
    return Split(train=np.sort(np.concatenate([split.train, chosen])), val=split.val)


def classifier_datasets(path, *, batch_size: int, seed: int, **options) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """:func:`classifier_epochs` with the training set as one dataset, reshuffled on every iteration."""
    train, val = classifier_epochs(path, batch_size=batch_size, seed=seed, **options)
    return train.reshuffled(seed), val


def classifier_epochs(
    path, *, batch_size: int, seed: int, num_classes: int = 3, val_fraction: float = 0.2,
    max_events: int | None = None, shuffle_buffer: int = 10_000, augmentation: bool = True,
    read_block: int = 64, cache: bool = True, balance: bool = True,
) -> tuple[Epochs, tf.data.Dataset]:
    """Labelled training and validation datasets for a supervised classifier (the CCT baseline).

    Every event of the file is used, background and signal; the split is stratified by target class.
    Targets are one-hot over ``num_classes``: 3 = (QCD, SUEP, SVJ) as the file's labels, 2 = (QCD,
    signal). ``balance``: per-event weights ``n / (C · n_c)`` so that each class weighs the same in
    the loss and metrics (a labelled toy file holds 9 signal mass points per QCD sample).
    Training: masks → cache → shuffle → augment (§4.2) → batch; validation neither shuffled nor
    augmented. Elements: ``(mask (batch, 72, 58, 1) float32, one-hot (batch, C) float32,
    weight (batch,) float32)``.
    """
    if num_classes not in (2, 3):
        raise TfphysError(f"num_classes must be 2 (QCD vs signal) or 3 (QCD, SUEP, SVJ), got {num_classes}")
    check_val_fraction(val_fraction)
    with formats.open_darkshowers(path) as f:
        labels = f["label"][:].astype(np.int64)
    if max_events is not None:
        labels = labels[:max_events]
    targets = labels if num_classes == 3 else (labels != 0).astype(np.int64)
    if np.all(targets == 0) or np.all(targets != 0):
        raise TfphysError(f"data file {path} needs both QCD (label 0) and signal events to train a classifier")
    split = Split.merge(split_by_class(
        targets, np.unique(targets), val_fraction, seed=seed,
        too_few=lambda c, n: f"data file {path} has {n} events of class {c}: too few for a stratified split "
                             f"with val_fraction={val_fraction}").values())
    train, val = split.train, split.val
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(targets) / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0)
    weights = per_class[targets] if balance else np.ones(len(targets))

    def labelled(indices):
        y = tf.data.Dataset.from_tensor_slices((targets[indices], weights[indices].astype(np.float32)))
        return tf.data.Dataset.zip(masks(path, indices, read_block=read_block), y)

    def as_example(x, y, w):
        return tf.cast(x, tf.float32), tf.one_hot(y, num_classes), w

    train_ds, val_ds = labelled(train), labelled(val)
    if cache:
        train_ds, val_ds = train_ds.cache(), val_ds.cache()
    n = len(train)

    def one_epoch(e):
        ds = _epoch(train_ds, n, seed, e, shuffle_buffer, augmentation, lambda xy, s: (augment(xy[0], s), xy[1]))
        return ds.map(lambda x, yw: as_example(x, *yw)).batch(batch_size)

    val_ds = val_ds.map(lambda x, yw: (x, *yw))
    val_ds = val_ds.map(as_example).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return Epochs(one_epoch, n, batch_size), val_ds

def block_hits(deposits: np.ndarray, k: int = DOWNSAMPLE) -> np.ndarray:
    """Algorithm 1 in NumPy on one channel ``(B, H, W)`` of deposits ≥ 0: whether each ``k × k``
    block of :func:`downsample` (the same 'SAME' zero padding) holds a positive pixel, ``(B, ⌈H/k⌉,
    ⌈W/k⌉)`` bool. For deposits ≥ 0 that is the block sum > 0, i.e. :func:`preprocess`'s mask.
    """
    hit = deposits > 0
    for axis in (1, 2):
        size = hit.shape[axis]
        if axis == 1 and size % k == 0:  # no padding: a reshape (2× faster than reduceat)
            hit = hit.reshape(len(hit), size // k, k, -1).any(axis=2)
            continue
        n_out = -(-size // k)
        before = (n_out * k - size) // 2  # TF 'SAME' with stride k: the smaller half of the padding first
        starts = np.maximum(np.arange(n_out) * k - before, 0)
        hit = np.logical_or.reduceat(hit, starts, axis=axis)
    return hit


def load_masks(path, indices, *, read_block: int = 64) -> np.ndarray:
    """The preprocessed masks of ``indices`` (in sorted order) as one float32 array ``(n, 72, 58, 1)``.

    The same masks as :func:`masks` (Algorithm 1 in TensorFlow, the training pipeline's), computed
    in NumPy (:func:`block_hits`) on blocks of ``read_block`` events: ~3× faster, which matters to
    scoring once the forward pass runs in LiteRT (``tests/darkshowers/test_runtime_scoring.py`` pins
    the equality).
    """
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    out = np.zeros((len(indices), *MASK_SHAPE), np.float32)
    blocks = [indices[i: i + read_block] for i in range(0, len(indices), read_block)]
    reader = _BlockReader(path, blocks)
    try:
        for b, block in enumerate(blocks):
            start = b * read_block
            out[start: start + len(block), ..., 0] = block_hits(reader(b)[..., 0])
    finally:
        if reader._file is not None:
            reader._file.close()
    return out


def labelled_sample(path, n_per_class: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced sample for AUROC: up to ``n_per_class`` QCD and as many signal events.

    Returns masks ``(n, 72, 58, 1)`` and ``is_signal`` ``(n,)`` (0 = QCD, 1 = SUEP or SVJ).
    """
    chosen, labels = labelled_indices(path, n_per_class, seed=seed)
    return load_masks(path, chosen), (labels[chosen] != 0).astype(np.int8)


def labelled_indices(path, n_per_class: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The sorted event indices :func:`labelled_sample` takes, and the file's labels."""
    with formats.open_darkshowers(path) as f:
        labels = f["label"][:]
    rng = np.random.default_rng(seed)
    background, signal = np.flatnonzero(labels == 0), np.flatnonzero(labels != 0)
    if len(background) == 0 or len(signal) == 0:
        raise TfphysError(f"data file {path} needs both QCD (label 0) and signal events for an AUROC")
    k = min(n_per_class, len(background), len(signal))
    chosen = np.sort(np.concatenate([rng.choice(background, k, replace=False),
                                     rng.choice(signal, k, replace=False)]))
    return chosen, labels
