"""``tf.data`` pipelines, one module per family: read files, preprocess, augment, batch."""

from __future__ import annotations

import tensorflow as tf


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
