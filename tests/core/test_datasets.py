"""The split every family's pipeline shares (tfphys.datasets): one Split, one val_fraction check."""

import math

import numpy as np
import pytest

from tfphys.datasets import Split, check_val_fraction, split_by_class, split_indices
from tfphys.errors import TfphysError


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5])
def test_val_fraction_outside_0_1_is_one_error_for_every_family(bad):
    with pytest.raises(TfphysError, match=rf"^\[data\] val_fraction must lie in \(0, 1\), got {bad}$"):
        check_val_fraction(bad)
    assert check_val_fraction(0.25) == 0.25


def test_contiguous_split_holds_out_the_last_rounded_fraction():
    split = split_indices(np.arange(10), 0.25)  # round(2.5) = 2: Python's half-to-even
    assert split.train.tolist() == list(range(8)) and split.val.tolist() == [8, 9] and split.n_train == 8
    ceil = split_indices(np.arange(10), 0.25, rounding=math.ceil)
    assert ceil.val.tolist() == [7, 8, 9]


def test_random_split_is_the_head_of_a_seeded_permutation_each_part_sorted():
    idx = np.arange(100, 120)
    perm = np.random.default_rng(4).permutation(idx)
    split = split_indices(idx, 0.25, rng=np.random.default_rng(4))
    assert split.val.tolist() == sorted(perm[:5].tolist()) and split.train.tolist() == sorted(perm[5:].tolist())


def test_a_split_with_an_empty_part_is_refused_with_the_callers_message():
    with pytest.raises(TfphysError, match="^3 items cannot be split into training and validation parts"):
        split_indices(np.arange(3), 0.1)  # round(0.3) = 0 held out
    with pytest.raises(TfphysError, match="^too few maps$"):
        split_indices(np.arange(1), 0.5, rounding=math.ceil, too_few="too few maps")


def test_split_by_class_draws_the_classes_in_turn_from_one_generator():
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 1, 0, 1])
    parts = split_by_class(labels, (0, 1), 0.4, seed=7)
    rng = np.random.default_rng(7)
    for c in (0, 1):
        perm = rng.permutation(np.flatnonzero(labels == c))
        assert parts[c].val.tolist() == sorted(perm[:2].tolist())
    merged = Split.merge(parts.values())
    assert merged.val.tolist() == sorted(parts[0].val.tolist() + parts[1].val.tolist())
    assert sorted(merged.train.tolist() + merged.val.tolist()) == list(range(10))
    with pytest.raises(TfphysError, match="^class 2: 0 items$"):
        split_by_class(labels, (2,), 0.4, seed=7, too_few=lambda c, n: f"class {c}: {n} items")


@pytest.mark.parametrize("global_seed", [None, 0, 5])
def test_a_seeded_shuffle_inside_a_flat_map_depends_on_its_seed_only(global_seed):
    """Epoch e's order inside ``flat_map`` (the trainer's epoch stream) is built whatever the global
    seed — 0, every model's default ``[train] seed``, used to raise OperatorNotAllowedInGraphError —
    and is the same permutation under every global seed; epochs differ, and each holds every item once."""
    import keras
    import tensorflow as tf

    from tfphys.datasets import epoch_seed, seeded_shuffle

    if global_seed is not None:
        keras.utils.set_random_seed(global_seed)
    stream = tf.data.Dataset.range(3).flat_map(
        lambda e: seeded_shuffle(tf.data.Dataset.range(10), 10, epoch_seed(7, e)))
    orders = np.array(list(stream.as_numpy_iterator())).reshape(3, 10)
    assert all(sorted(o) == list(range(10)) for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    expected = [6, 3, 5, 0, 1, 9, 7, 8, 4, 2]  # fixed by (seed 7, epoch 0): a change here changes every run's order
    assert orders[0].tolist() == expected
