"""Shared fixtures: tiny configs and small hand-made data files (tests stay fast on 2 cores)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist (README: `-n 2`), each worker's TensorFlow — and every command a test starts in a
# fresh process, which inherits this — gets its share of the cores instead of all of them: two workers
# each running the machine's thread count only fight over the caches.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_share))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))

import numpy as np
import pytest

from tfphys.darkshowers import format as formats

TINY_CONFIG = """
[data]
val_fraction = 0.25
default_n = 40
default_seed = 7
[pipeline]
batch_size = 8
[model]
encoder_filters = [8, 8, 8, 8]
mask_filters = [8, 8, 8, 8]
decoder_filters = [8, 8, 8, 8]
latent_channels = 4
[train]
epochs = 2
seed = 1
[train.optimizer]
class_name = "AdamW"
learning_rate = 3e-3
weight_decay = 0.1
clipnorm = 1.0
"""


def sparse_events(n, *, label=0, mass=0.0, hits=(20, 80), seed=0):
    """``n`` random sparse events in the dark-shower layout (deposits anywhere, all channels)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, *formats.IMAGE_SHAPE), np.float32)
    for i in range(n):
        k = rng.integers(*hits)
        images[i, rng.integers(0, 360, k), rng.integers(0, 286, k), rng.integers(0, 3, k)] = (
            rng.exponential(2.0, k) + 0.1)
    return {
        "images": images,
        "label": np.full(n, label, np.int8),
        "mass": np.full(n, mass, np.float32),
        "n_tracks": (images[..., 0] > 0).sum(axis=(1, 2)).astype(np.int32),
    }


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def qcd_file(tmp_path_factory):
    """48 QCD-labelled sparse events."""
    path = tmp_path_factory.mktemp("data") / "qcd.h5"
    formats.write_darkshowers(path, [sparse_events(48, seed=1)], generator="test")
    return path


@pytest.fixture(scope="session")
def mixed_file(tmp_path_factory):
    """32 QCD events, then 16 'signal' events (label 1) whose tracker channel is hit everywhere."""
    path = tmp_path_factory.mktemp("data") / "mixed.h5"
    signal = sparse_events(16, label=1, mass=125.0, seed=2)
    signal["images"][..., 0] = 1.0  # every one of the 72 × 58 mask pixels is hit
    formats.write_darkshowers(path, [sparse_events(32, seed=3), signal], generator="test")
    return path


@pytest.fixture(scope="session")
def labelled_file(tmp_path_factory):
    """24 QCD-like sparse events and 24 busier 'signal' events (label 1): a sample for AUROCs."""
    path = tmp_path_factory.mktemp("data") / "labelled.h5"
    formats.write_darkshowers(path, [sparse_events(24, seed=11),
                                     sparse_events(24, label=1, mass=400.0, hits=(60, 160), seed=12)],
                              generator="test")
    return path


#: the tiny [model] tables of the family tests (tests/conftest.py, tests/darkshowers/test_baselines.py,
#: tests/cbae/test_cbae.py, tests/leapfrog/test_sampler.py, tests/albus/test_albus.py)
TINY_MODELS = {
    "codae": dict(encoder_filters=[8] * 4, mask_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4),
    "codvae": dict(encoder_filters=[8] * 4, mask_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4),
    "cae": dict(encoder_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4),
    "ae": dict(encoder_filters=[[4, 4], [4, 0], [4, 0]], latent_dim=8, decoder_reshape=[9, 8, 4],
               decoder_filters=[4, 4, 4]),
    "dirvae": dict(hidden_units=16, concentration=[1.0, 0.25, 0.1], kl_weight=0.1),
    "cct": dict(tokenizer_filters=[4, 8], transformer_layers=1, num_heads=1, mlp_units=[8, 8], num_classes=3),
    "cbae": dict(bottleneck=2, encoder_filters=[8, 8], encoder_units=[32], decoder_units=[32, 64],
                 decoder_filters=[8, 8], kernel_size=3, encoder_batch_norm=True, decoder_margin=1,
                 decoder_fourier_octaves=2),
    "leapfrog": dict(lattice_size=3, n_leapfrog=1, n_chains=4, beta=2.0, beta_init=1.0, anneal_steps=6, units=[4]),
    "albus": dict(down_filters=[2, 2, 4, 4, 4], up_filters=[4, 4, 2, 2], convs_per_block=1),
}
