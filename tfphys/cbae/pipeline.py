"""``tf.data`` pipeline for the CBAE toy waveforms (paper §3.1–3.2).

    HDF5 file ──read once──► (n, 1024) s, (n, 2) p in memory ──► split: first n_train / the rest
    ──► shuffle (seeded, every epoch) ──► batch ──► (s, [p ‖ s]) ──► prefetch

The model's one output is ``[p′ ‖ s′]`` (:mod:`tfphys.cbae.model`), so the target is ``[p ‖ s]``:
the target of ``s′`` is the noisy input itself (an autoencoder: the noise averages out
over the training set, §4); the target of ``params`` is the true p. The paper splits its 50k
waveforms into 40k for training and 10k for testing; the held-out part is also Keras' validation
set here (the paper has no third split), and :mod:`tfphys.cbae.evaluate` evaluates on it.
A whole 50k file is 200 MB of float32 in memory, so it is read once, not streamed.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfphys.cbae import waveforms as wf
from tfphys.datasets import Epochs, Split, check_val_fraction, epoch_seed, seeded_shuffle, split_indices
from tfphys.errors import TfphysError


def split(n: int, val_fraction: float = 0.2, max_waveforms: int | None = None) -> Split:
    """The paper's split: the last ``val_fraction`` of the (first ``max_waveforms``) waveforms are held
    out (50k → 40k / 10k). The waveforms of a file are i.i.d., so a contiguous split is a random one:
    training ``[0, n_train)``, held-out ``[n_train, n)`` (see :func:`_range`).
    """
    check_val_fraction(val_fraction)
    if max_waveforms is not None:
        if max_waveforms <= 0:
            raise TfphysError(f"[data] max_waveforms must be positive, got {max_waveforms}")
        n = min(n, int(max_waveforms))
    return split_indices(np.arange(n), val_fraction,
                         too_few=f"{n} waveforms cannot be split into training and held-out parts "
                                 f"with val_fraction = {val_fraction}")


def _range(indices: np.ndarray) -> tuple[int, int]:
    """``(start, stop)`` of a contiguous part of a :func:`split`, for :func:`~tfphys.cbae.waveforms.read_waveforms`."""
    return int(indices[0]), int(indices[-1]) + 1


def _dataset(data: wf.Waveforms, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    # Shuffle and batch *indices*, then gather each batch from the in-memory arrays: shuffling the
    # 4 kB waveforms themselves copies every one through a 40k-element buffer each epoch, which
    # competed with the training for the two cores. Same seed → the same order as shuffling the
    # waveforms (the permutation does not depend on what is shuffled).
    waveforms, params = tf.constant(data.waveforms), tf.constant(data.params)

    def gather(i):
        s = tf.gather(waveforms, i)
        return s, tf.concat([tf.gather(params, i), s], axis=1)

    if not shuffle:
        return tf.data.Dataset.range(len(data)).batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)

    def one_epoch(e):  # epoch e's order: a pure function of (seed, e), see tfphys.datasets.Epochs
        ds = tf.data.Dataset.range(len(data))
        ds = seeded_shuffle(ds, len(data), epoch_seed(seed, e))
        return ds.batch(batch_size).map(gather)

    return Epochs(one_epoch, len(data), batch_size)


def cbae_datasets(path, *, batch_size: int = 32, seed: int = 0, **options) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """:func:`cbae_epochs` with the training set as one dataset, reshuffled on every iteration."""
    train, held = cbae_epochs(path, batch_size=batch_size, seed=seed, **options)
    return train.reshuffled(seed), held


def cbae_epochs(path, *, batch_size: int = 32, seed: int = 0, val_fraction: float = 0.2,
                max_waveforms: int | None = None) -> tuple[Epochs, tf.data.Dataset]:
    """(training epochs, held-out dataset) of ``(s, [p ‖ s])`` batches: ``(B, 1024)``, ``(B, 2 + 1024)``.

    Training batches are reshuffled every epoch from ``(seed, epoch)`` (whole-set shuffle: the data are in
    memory anyway); held-out batches come in file order.
    """
    if batch_size <= 0:
        raise TfphysError(f"batch size must be positive, got {batch_size}")
    parts = split(wf.count(path), val_fraction, max_waveforms)
    train = wf.read_waveforms(path, *_range(parts.train), clean=False)
    held_out = wf.read_waveforms(path, *_range(parts.val), clean=False)
    return (_dataset(train, batch_size, shuffle=True, seed=seed),
            _dataset(held_out, batch_size, shuffle=False, seed=seed))


def held_out(path, *, val_fraction: float = 0.2, max_waveforms: int | None = None) -> wf.Waveforms:
    """The held-out (test) waveforms of a training file, with their noiseless f(p)."""
    parts = split(wf.count(path), val_fraction, max_waveforms)
    return wf.read_waveforms(path, *_range(parts.val))
