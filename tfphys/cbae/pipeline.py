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

from dataclasses import dataclass

import tensorflow as tf

from tfphys.cbae import waveforms as wf
from tfphys.errors import TfphysError


@dataclass(frozen=True)
class Split:
    """Waveform index ranges: training ``[0, n_train)`` and held-out ``[n_train, n)``."""

    n_train: int
    n: int

    @property
    def held_out(self) -> tuple[int, int]:
        return self.n_train, self.n


def split(n: int, val_fraction: float = 0.2, max_waveforms: int | None = None) -> Split:
    """The paper's split: the last ``val_fraction`` of the (first ``max_waveforms``) waveforms are held
    out (50k → 40k / 10k). The waveforms of a file are i.i.d., so a contiguous split is a random one.
    """
    if not 0.0 < val_fraction < 1.0:
        raise TfphysError(f"[data] val_fraction must be in (0, 1), got {val_fraction}")
    if max_waveforms is not None:
        if max_waveforms <= 0:
            raise TfphysError(f"[data] max_waveforms must be positive, got {max_waveforms}")
        n = min(n, int(max_waveforms))
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n - n_val < 1:
        raise TfphysError(f"{n} waveforms cannot be split into training and held-out parts "
                          f"with val_fraction = {val_fraction}")
    return Split(n - n_val, n)


def _dataset(data: wf.Waveforms, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    # Shuffle and batch *indices*, then gather each batch from the in-memory arrays: shuffling the
    # 4 kB waveforms themselves copies every one through a 40k-element buffer each epoch, which
    # competed with the training for the two cores. Same seed → the same order as shuffling the
    # waveforms (the permutation does not depend on what is shuffled).
    waveforms, params = tf.constant(data.waveforms), tf.constant(data.params)

    def gather(i):
        s = tf.gather(waveforms, i)
        return s, tf.concat([tf.gather(params, i), s], axis=1)

    ds = tf.data.Dataset.range(len(data))
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)


def cbae_datasets(path, *, batch_size: int = 32, seed: int = 0, val_fraction: float = 0.2,
                  max_waveforms: int | None = None) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """(training, held-out) datasets of ``(s, [p ‖ s])`` batches: ``(B, 1024)``, ``(B, 2 + 1024)``.

    Training batches are reshuffled every epoch from ``seed`` (whole-set shuffle: the data are in
    memory anyway); held-out batches come in file order.
    """
    if batch_size <= 0:
        raise TfphysError(f"batch size must be positive, got {batch_size}")
    parts = split(wf.count(path), val_fraction, max_waveforms)
    train = wf.read_waveforms(path, 0, parts.n_train, clean=False)
    held_out = wf.read_waveforms(path, *parts.held_out, clean=False)
    return (_dataset(train, batch_size, shuffle=True, seed=seed),
            _dataset(held_out, batch_size, shuffle=False, seed=seed))


def held_out(path, *, val_fraction: float = 0.2, max_waveforms: int | None = None) -> wf.Waveforms:
    """The held-out (test) waveforms of a training file, with their noiseless f(p)."""
    parts = split(wf.count(path), val_fraction, max_waveforms)
    return wf.read_waveforms(path, *parts.held_out)
