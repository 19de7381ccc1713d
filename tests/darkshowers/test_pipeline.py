"""Algorithm 1 and the §4.2 augmentations, and the tf.data pipeline built from them."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import sparse_events
from tfphys.darkshowers import format as formats
from tfphys.darkshowers import pipeline as pipe
from tfphys.errors import TfphysError


def _blocks_numpy(images, k=5):
    """Independent reference: pad like TF 'SAME' (2 columns each side), then sum k×k blocks."""
    n, h, w, c = images.shape
    out_w = -(-w // k)
    pad = out_w * k - w
    padded = np.pad(images, ((0, 0), (0, 0), (pad // 2, pad - pad // 2), (0, 0)))
    return padded.reshape(n, h // k, k, out_w, k, c).sum(axis=(2, 4))


def test_algorithm1_preserves_energy_and_matches_block_sums():
    images = sparse_events(4, seed=5)["images"]
    images[:, :, [0, 285], :] += 1.5  # deposits in the padded edge columns count too
    down = pipe.downsample(tf.constant(images)).numpy()
    assert down.shape == (4, 72, 58, 3)
    np.testing.assert_allclose(down.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(down, _blocks_numpy(images), rtol=1e-5, atol=1e-5)


def test_mask_counts_occupied_tracker_blocks_only():
    images = sparse_events(4, seed=6)["images"]
    mask = pipe.preprocess(tf.constant(images)).numpy()
    assert mask.shape == (4, 72, 58, 1) and set(np.unique(mask)) <= {0.0, 1.0}
    expected = (_blocks_numpy(images)[..., 0] > 0).sum(axis=(1, 2))
    np.testing.assert_array_equal(mask.sum(axis=(1, 2, 3)), expected)
    calo_only = images.copy()
    calo_only[..., 0] = 0
    assert pipe.preprocess(tf.constant(calo_only)).numpy().sum() == 0


def _mask(seed=0):
    rng = np.random.default_rng(seed)
    return tf.constant((rng.random((72, 58, 1)) < 0.1).astype(np.uint8))


def test_every_drawn_augmentation_preserves_hits_and_all_six_occur():
    mask = _mask()
    seen = set()
    for s in range(300):
        out = pipe.augment(mask, tf.constant([s, 17], tf.int64)).numpy()
        assert out.sum() == mask.numpy().sum()
        assert sorted(out.ravel()) == sorted(mask.numpy().ravel())
        seen.add(out.tobytes())
    # 72 rows = 9 × 8, so rolling up by 8k equals rolling down by 8(9 − k): the 2 × 7 rolls give the
    # 8 distinct shifts 8, 16, …, 64. Distinct images: identity + flip + 8 rolls + 8 flip-rolls.
    assert len(seen) == 18


def test_flip_is_an_involution_and_rolls_are_8k_rows_with_wraparound():
    m = _mask(1).numpy()
    flipped = m[:, ::-1]
    np.testing.assert_array_equal(flipped[:, ::-1], m)
    outputs = {pipe.augment(tf.constant(m), tf.constant([s, 3], tf.int64)).numpy().tobytes()
               for s in range(300)}
    expected = {m.tobytes(), flipped.tobytes()}
    for k in range(1, 8):
        for sign in (-1, 1):
            expected.add(np.roll(m, sign * 8 * k, axis=0).tobytes())
            expected.add(np.roll(flipped, sign * 8 * k, axis=0).tobytes())
    assert outputs == expected


def test_training_split_is_background_only_and_disjoint(mixed_file):
    split = pipe.split_events(mixed_file, val_fraction=0.25, seed=0)
    assert len(split.train) == 24 and len(split.val) == 8
    assert np.intersect1d(split.train, split.val).size == 0
    assert split.train.max() < 32 and split.val.max() < 32  # signal events are 32..47
    train, val = pipe.autoencoder_datasets(mixed_file, batch_size=8, seed=0, val_fraction=0.25)
    hits = np.concatenate([x.numpy().sum(axis=(1, 2, 3)) for x, _ in train])
    assert len(hits) == 24 and hits.max() < 72 * 58  # no (fully hit) signal image leaks in


def test_split_indices_for_a_seed_are_pinned(mixed_file, labelled_file):
    """The same seed must keep giving the same split (and so the same losses): pinned indices."""
    split = pipe.split_events(mixed_file, val_fraction=0.25, seed=0)
    assert split.val.tolist() == [2, 4, 10, 11, 16, 21, 25, 29]
    assert split.train.tolist() == sorted(set(range(32)) - set(split.val.tolist()))
    assert pipe.split_events(mixed_file, val_fraction=0.25, seed=3).val.tolist() == [3, 12, 17, 25, 27, 28, 29, 30]
    both = pipe.split_events(mixed_file, classes=(0, 1), val_fraction=0.1, seed=5, max_events=40)
    assert both.val.tolist() == [6, 18, 24, 30] and len(both.train) == 36
    mixed = pipe.contaminate(mixed_file, pipe.split_events(mixed_file, val_fraction=0.25, seed=3), 0.1, seed=3)
    assert np.setdiff1d(mixed.train, np.arange(32)).tolist() == [35, 41, 45]
    # the classifier's stratified split, read back from its (file-ordered) validation masks
    masks = pipe.load_masks(labelled_file, np.arange(48)).reshape(48, -1)
    for num_classes, seed, expected in ((3, 0, [2, 4, 10, 11, 18, 21, 26, 28, 31, 37, 42, 43]),
                                        (2, 4, [0, 7, 9, 11, 16, 20, 30, 35, 40, 42, 43, 47])):
        _, val = pipe.classifier_datasets(labelled_file, batch_size=64, seed=seed, num_classes=num_classes,
                                          val_fraction=0.25, augmentation=False)
        x = next(iter(val))[0].numpy().reshape(12, -1)
        assert [int(np.flatnonzero((masks == row).all(axis=1))[0]) for row in x] == expected


def test_pipeline_is_deterministic_under_a_seed(qcd_file):
    def first_epoch(seed):
        train, _ = pipe.autoencoder_datasets(qcd_file, batch_size=8, seed=seed)
        return np.concatenate([x.numpy() for x, y in train])

    a, b, c = first_epoch(3), first_epoch(3), first_epoch(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_targets_equal_inputs_and_validation_is_not_augmented(qcd_file):
    train, val = pipe.autoencoder_datasets(qcd_file, batch_size=8, seed=0, val_fraction=0.25)
    for x, y in train.take(2):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    split = pipe.split_events(qcd_file, val_fraction=0.25, seed=0)
    with formats.open_darkshowers(qcd_file) as f:
        raw = f["images"][np.sort(split.val)]
    expected = pipe.preprocess(tf.constant(raw)).numpy()
    got = np.concatenate([x.numpy() for x, _ in val])
    np.testing.assert_array_equal(got, expected)


def test_nan_pixels_are_reported_with_the_event(tmp_path):
    events = sparse_events(12, seed=9)
    events["images"][10, 3, 3, 1] = np.nan
    path = tmp_path / "nan.h5"
    formats.write_darkshowers(path, [events], generator="test")
    train, val = pipe.autoencoder_datasets(path, batch_size=4, seed=0, val_fraction=0.25)
    with pytest.raises(Exception, match="event 10 has non-finite"):
        for ds in (train, val):
            for _ in ds:
                pass


def test_too_few_background_events_is_a_clear_error(mixed_file):
    with pytest.raises(TfphysError, match="too few"):
        pipe.split_events(mixed_file, classes=(2,), seed=0)


def test_disable_autotune_keeps_every_element_and_the_seeded_order():
    from tfphys.datasets import disable_autotune

    def build():
        ds = tf.data.Dataset.range(200).shuffle(200, seed=3, reshuffle_each_iteration=True)
        return ds.map(lambda i: i * i, num_parallel_calls=tf.data.AUTOTUNE).batch(7).prefetch(tf.data.AUTOTUNE)

    tuned, fixed = build(), disable_autotune(build())
    assert tuned.options().autotune.enabled is not False and fixed.options().autotune.enabled is False
    for _ in range(2):  # two epochs: the same reshuffled order with and without autotuning
        a = np.concatenate(list(tuned.as_numpy_iterator()))
        b = np.concatenate(list(fixed.as_numpy_iterator()))
        np.testing.assert_array_equal(a, b)
        assert sorted(b.tolist()) == [i * i for i in range(200)]
