"""ALBUS: coherence maps, noise, chirps and visibility, RGB storage, targets, U-Net, pipeline, evaluation.

Small geometries (1024 Hz, 2 min) keep the physics tests fast; the paper's 166 × 1025 geometry is
checked for its shape (and the U-Net on it with tiny widths).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import signal

from tfphys.albus import coherence, injections, noise, storage
from tfphys.albus.coherence import PAPER, MapGeometry
from tfphys.errors import TfphysError

SMALL = MapGeometry(sample_rate_hz=1024.0, duration_s=120.0)  # 20 × 257 pixels
TINY_NET = dict(down_filters=(2, 2, 4, 4, 4), up_filters=(4, 4, 2, 2), convs_per_block=1)


# ---------------------------------------------------------------------------- coherence (Eq. 1)
def test_paper_geometry_is_166_by_1025_with_23_welch_averages():
    assert PAPER.shape == (166, 1025) and PAPER.n_avg == 23
    assert PAPER.frequencies_hz[1] == 2.0 and PAPER.frequencies_hz[-1] == 2048.0


def test_coherence_of_identical_streams_is_one():
    x = np.random.default_rng(0).standard_normal(SMALL.n_samples)
    c = coherence.coherence_map(x, 3.0 * x, SMALL)  # scale invariant
    assert c.shape == SMALL.shape
    np.testing.assert_allclose(c, 1.0, atol=1e-5)


def test_coherence_of_independent_white_noise_is_one_over_n_avg():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, SMALL.n_samples))
    mean = coherence.coherence_map(x, y, SMALL).mean()
    # Welch's n_eff for 50 %-overlapping Hann segments is a little below n_avg (21.8 vs 23 here)
    n_eff = coherence.effective_averages(SMALL)
    assert 0.9 * SMALL.n_avg < n_eff < SMALL.n_avg
    assert mean == pytest.approx(1 / n_eff, rel=0.05)
    assert mean == pytest.approx(1 / SMALL.n_avg, rel=0.1)


def test_coherence_equals_scipy_welch_stride_by_stride():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(SMALL.n_samples)
    y = 0.5 * x + rng.standard_normal(SMALL.n_samples)
    ours = coherence.coherence_map(x, y, SMALL)
    n = SMALL.n_time * SMALL.stride
    _, ref = signal.coherence(x[:n].reshape(SMALL.n_time, -1), y[:n].reshape(SMALL.n_time, -1),
                              fs=SMALL.sample_rate_hz, nperseg=SMALL.nperseg, noverlap=SMALL.noverlap, axis=-1)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_time_normalisation_makes_every_frequency_column_sum_to_one():
    c = coherence.coherence_map(*np.random.default_rng(3).standard_normal((2, SMALL.n_samples)), SMALL)
    n = coherence.normalise_time(c)
    np.testing.assert_allclose(n[:, 1:].sum(axis=0), 1.0, rtol=1e-5)


def test_bad_coherence_input_is_a_clear_error():
    with pytest.raises(TfphysError, match="does not fit the map"):
        coherence.coherence_map(np.zeros(SMALL.n_samples + 1), np.zeros(SMALL.n_samples + 1), SMALL)
    with pytest.raises(TfphysError, match="whole number of samples"):
        MapGeometry(sample_rate_hz=1000.0, stride_s=6.0, fftlength_s=0.5, overlap_s=0.0005)


# ---------------------------------------------------------------------------- noise
def test_coloured_noise_has_the_requested_psd():
    rng = np.random.default_rng(4)
    n, fs = 2**16, 1024.0
    x = noise.coloured_noise(n, rng, sample_rate_hz=fs, model="analytic", n_streams=4).astype(np.float64)
    f, p = signal.welch(x, fs=fs, nperseg=1024, axis=-1)
    expected = noise.analytic_psd(f)
    for lo, hi in ((20, 60), (100, 300), (300, 500)):
        band = (f > lo) & (f < hi)
        assert p[:, band].mean() / expected[band].mean() == pytest.approx(1.0, rel=0.05)


def test_o3_psd_needs_lalsuite_and_says_so(monkeypatch):
    monkeypatch.setattr(noise, "has_lalsuite", lambda: False)
    assert noise.resolve_psd_model("auto") == "analytic"
    with pytest.raises(TfphysError, match=r"tfphys\[gw\]"):
        noise.resolve_psd_model("O3")
    with pytest.raises(TfphysError, match="unknown PSD model"):
        noise.resolve_psd_model("O4")


@pytest.mark.skipif(not noise.has_lalsuite(), reason="lalsuite (tfphys[gw]) not installed")
def test_o3_psd_from_lalsuite_is_the_o3_curve():
    s = noise.psd(2 * 4096 * 4, 4096.0, "O3")  # 0.25 Hz grid
    f = np.fft.rfftfreq(2 * 4096 * 4, 1 / 4096)
    # the O3 bucket lies near 4e-24 /√Hz at ~200 Hz, well above the aLIGO design fit
    assert 2e-24 < np.sqrt(s[np.argmin(abs(f - 200))]) < 1e-23
    assert np.all(s > 0)


def test_time_slides_exclude_zero_lag_and_shift_by_at_least_the_minimum():
    h1 = np.arange(4 * 100, dtype=float)
    l1 = -np.arange(4 * 100, dtype=float)
    pairs = list(noise.time_slide_pairs(h1, l1, 100.0, min_shift_s=50.0, sample_rate_hz=1.0))
    assert len(pairs) == 4 * 3
    for x, y, shift in pairs:
        assert shift >= 100 and not np.array_equal(-y, x)  # never the zero-lag L1 segment
        np.testing.assert_array_equal(-y, (x - shift) % 400)
    with pytest.raises(TfphysError, match="shorter than the minimum"):
        list(noise.time_slide_pairs(h1, l1, 100.0, min_shift_s=500.0, sample_rate_hz=1.0))


def test_a_coherent_glitch_makes_a_vertical_line():
    rng = np.random.default_rng(5)
    h1, l1 = noise.detector_noise(SMALL.duration_s, rng, sample_rate_hz=SMALL.sample_rate_hz, model="analytic")
    noise.add_coherent_glitches(h1, l1, [61.0], rng, sample_rate_hz=SMALL.sample_rate_hz, model="analytic")
    c = coherence.coherence_map(h1, l1, SMALL)
    column = int(61.0 // SMALL.stride_s)
    assert c[column, 10:].mean() > 0.5  # broadband, after whitening
    assert np.delete(c, column, axis=0)[:, 10:].mean() < 0.1


# ---------------------------------------------------------------------------- chirps
@pytest.mark.parametrize("method", injections.METHODS)
def test_chirp_instantaneous_frequency_follows_its_law(method):
    fs = 4096.0
    chirp = injections.Chirp(duration_s=4.0, delay_s=0.0, f_start_hz=100.0, f_end_hz=400.0, method=method,
                             beta=0.0)  # β = 0: a flat window, the bare chirp
    w = injections.waveform(chirp, fs)
    np.testing.assert_allclose(w, signal.chirp(np.arange(len(w)) / fs, 100.0, 4.0, 400.0, method=method))
    phase = np.unwrap(np.angle(signal.hilbert(w)))
    f_measured = np.gradient(phase) * fs / (2 * np.pi)
    t = np.arange(len(w)) / fs
    mid = slice(len(w) // 10, 9 * len(w) // 10)
    np.testing.assert_allclose(f_measured[mid], injections.instantaneous_frequency(chirp, t[mid]), rtol=0.01)


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_kaiser_half_window_makes_energy_rise_or_fall(beta):
    n = 4000
    rising, falling = injections.kaiser_half(n, beta, True), injections.kaiser_half(n, beta, False)
    assert np.all(np.diff(rising) >= 0) and np.all(np.diff(falling) <= 0)
    np.testing.assert_allclose(rising, falling[::-1])
    assert rising[-1] == pytest.approx(1.0, abs=1e-6)
    chirp = injections.Chirp(10.0, 0.0, 50.0, 200.0, beta=beta, rising=True)
    e = np.square(injections.waveform(chirp, 1024.0))
    assert e[: len(e) // 2].sum() < e[len(e) // 2:].sum()
    # larger β → narrower window → energy more unbalanced
    ratio = lambda b: np.square(injections.kaiser_half(n, b, True))[: n // 2].sum() / n  # noqa: E731
    assert ratio(4.0) < ratio(1.0)


def test_bad_chirp_parameters_give_clear_errors():
    with pytest.raises(TfphysError, match="ends after the 1000 s map"):
        injections.Chirp(duration_s=600.0, delay_s=500.0, f_start_hz=100.0, f_end_hz=200.0).validate()
    with pytest.raises(TfphysError, match="Nyquist"):
        injections.Chirp(duration_s=100.0, delay_s=0.0, f_start_hz=100.0, f_end_hz=3000.0).validate()
    with pytest.raises(TfphysError, match="unknown chirp method"):
        injections.Chirp(100.0, 0.0, 100.0, 200.0, method="cubic").validate()
    with pytest.raises(TfphysError, match="positive"):
        injections.Chirp(0.0, 0.0, 100.0, 200.0).validate()


def test_table_i_draws_are_within_the_ranges():
    rng = np.random.default_rng(6)
    for _ in range(50):
        c = injections.draw_chirp(rng)
        assert 10 <= c.duration_s <= 500 and 0 <= c.delay_s <= 500 and 1 <= c.beta <= 4
        assert 30 <= c.f_start_hz <= 2000 and 30 <= c.f_end_hz <= 2000 and c.method in injections.METHODS


# ---------------------------------------------------------------------------- visibility (Eq. 4), hrss, target
@pytest.fixture(scope="module")
def small_noise():
    rng = np.random.default_rng(7)
    h1, l1 = noise.detector_noise(SMALL.duration_s, rng, sample_rate_hz=SMALL.sample_rate_hz, model="analytic")
    return h1, l1, coherence.coherence_map(h1, l1, SMALL)


@pytest.mark.parametrize("level", [12, 40])
def test_visibility_loop_converges_within_ten_percent(small_noise, level):
    h1, l1, n_map = small_noise
    chirp = injections.Chirp(duration_s=30.0, delay_s=40.0, f_start_hz=80.0, f_end_hz=300.0,
                             method="logarithmic", beta=2.0, rising=False)
    inj = injections.inject_at_visibility(h1, l1, chirp, level, noise_map=n_map, geometry=SMALL)
    assert abs(inj.visibility - level) <= 0.1 * level
    # the loop recomputes only the chirp's strides: the full map must agree (Eq. 4 over all pixels)
    w = np.zeros(SMALL.n_samples)
    start = round(chirp.delay_s * SMALL.sample_rate_hz)
    wave = injections.waveform(chirp, SMALL.sample_rate_hz)
    w[start:start + len(wave)] = inj.amplitude * wave
    full = coherence.coherence_map(h1 + w, l1 + w, SMALL)
    np.testing.assert_allclose(full, inj.injected_map, atol=1e-5)  # float32 FFTs
    assert injections.visibility(full, n_map) == pytest.approx(inj.visibility, rel=1e-4)
    # Eq. (3)
    assert inj.hrss == pytest.approx(np.sqrt(np.trapezoid(w**2, dx=1 / SMALL.sample_rate_hz)), rel=1e-3)
    # the target follows the signal: top 1 % of D = S − N, in (0, 1], inside the chirp's strides
    target = injections.target_map(inj.injected_map, n_map)
    assert 0 < target.max() <= 1 and target.min() == 0
    assert np.count_nonzero(target) <= 0.01 * target.size + 1
    rows = np.flatnonzero(target.any(axis=1))
    assert rows.min() >= int(chirp.delay_s // 6) and rows.max() <= int((chirp.delay_s + chirp.duration_s) // 6)


def test_louder_visibility_needs_a_larger_hrss(small_noise):
    h1, l1, n_map = small_noise
    chirp = injections.Chirp(30.0, 40.0, 80.0, 300.0)
    quiet, loud = (injections.inject_at_visibility(h1, l1, chirp, v, noise_map=n_map, geometry=SMALL)
                   for v in (12, 40))
    assert loud.hrss > quiet.hrss


def test_background_target_is_empty(small_noise):
    _, _, n_map = small_noise
    assert not injections.target_map(n_map, n_map).any()


def test_bad_visibility_requests_are_errors(small_noise):
    h1, l1, n_map = small_noise
    with pytest.raises(TfphysError, match="must be positive"):
        injections.inject_at_visibility(h1, l1, injections.Chirp(30.0, 0.0, 80.0, 300.0), 0.0,
                                        noise_map=n_map, geometry=SMALL)


# ---------------------------------------------------------------------------- RGB storage
def test_cubehelix_rgb_round_trip_error_is_at_most_half_a_level():
    rng = np.random.default_rng(8)
    values = np.concatenate([rng.uniform(0, 1, 100_000), np.arange(257) / 256, [0.0, 1.0]]).astype(np.float32)
    rgb = storage.encode_rgb(values)
    assert rgb.dtype == np.uint8 and rgb.shape == (*values.shape, 3)
    assert np.abs(storage.decode_rgb(rgb) - values).max() <= 2.0**-9 + 1e-7
    with pytest.raises(TfphysError, match="not cubehelix"):
        storage.decode_rgb(np.full((2, 3), 7, np.uint8))


def test_stored_map_values_are_the_time_normalised_coherence(small_noise):
    _, _, n_map = small_noise
    values = storage.decode_rgb(storage.encode_map(n_map))
    expected = np.clip(coherence.normalise_time(n_map) * n_map.shape[0] / storage.VALUE_MAX, 0, 1)
    assert np.abs(values - expected).max() <= 2.0**-9 + 1e-6


# ---------------------------------------------------------------------------- dataset, pipeline
@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("albus") / "small.h5"
    storage.build(path, n_background=6, n_per_level=3, levels=(12, 40), n_glitch=1, seed=3, workers=1,
                  psd="analytic", geometry=SMALL, progress=False)
    return path


def test_builder_writes_a_valid_reproducible_file(small_file, tmp_path):
    with storage.open_albus(small_file) as f:
        kind = f["kind"][:]
        assert f["maps"].shape == (13, *SMALL.shape, 3) and f.attrs["psd"] == "analytic"
        assert (kind == 0).sum() == 6 and (kind == 1).sum() == 6 and (kind == 2).sum() == 1
        chirps = kind == 1
        v, level = f["visibility_measured"][:][chirps], f["visibility"][:][chirps]
        assert np.all(np.abs(v - level) <= 0.1 * level)
        assert np.all(f["hrss"][:][chirps] > 0) and not f["targets"][np.flatnonzero(kind == 0)[0]].any()
        assert np.all(f["slide_s"][:][kind == 0] >= SMALL.duration_s)
        first = f["maps"][7]
    again = tmp_path / "again.h5"
    storage.build(again, n_background=6, n_per_level=3, levels=(12, 40), n_glitch=1, seed=3, workers=1,
                  psd="analytic", geometry=SMALL, progress=False)
    with storage.open_albus(again) as f:
        np.testing.assert_array_equal(f["maps"][7], first)
    assert "chirp" in storage.summary(small_file)


def test_a_foreign_file_is_refused(tmp_path, qcd_file):
    with pytest.raises(TfphysError, match="not an ALBUS map file"):
        storage.open_albus(qcd_file)


def test_training_batches_are_half_background_half_chirps(small_file):
    from tfphys.albus.pipeline import albus_datasets, read_maps, split_maps

    train, val = albus_datasets(small_file, batch_size=4, seed=0, val_fraction=0.2)
    batches = list(train)
    assert len(batches) == 2  # 6 maps per class − ⌈20 %⌉ = 4 for training, 2 per half batch
    split = split_maps(small_file, val_fraction=0.2, seed=0)
    backgrounds, chirps = (read_maps(small_file, idx)[0] for idx in (split.train_background, split.train_chirp))
    seen = []
    for x, y in batches:
        assert x.shape == (4, *SMALL.shape, 3) and y.shape == (4, *SMALL.shape, 1)
        # each map is a training map of its class as the network sees it (uint8 / 255)
        for k, m in enumerate(x.numpy()):
            pool = backgrounds if k % 2 == 0 else chirps
            seen.append((k % 2, next(i for i, p in enumerate(pool) if np.array_equal(p, m))))
        sums = y.numpy().reshape(4, -1).sum(axis=1)
        # background, chirp, background, chirp: each half (one replica's share with 2 workers) balanced
        assert np.all(sums[0::2] == 0) and np.all(sums[1::2] > 0)
        # "max" targets (the default): each chirp target divided by its own peak
        np.testing.assert_allclose(y.numpy().reshape(4, -1).max(axis=1), [0, 1, 0, 1], atol=1e-6)
    assert sorted(seen) == [(c, i) for c in (0, 1) for i in range(4)]  # an epoch: every training map once
    with pytest.raises(TfphysError, match="even"):
        albus_datasets(small_file, batch_size=3)
    with pytest.raises(TfphysError, match="target must be one of"):
        albus_datasets(small_file, batch_size=4, target="boolean")


def _kinds_file(path, kind):
    """A valid ALBUS file of tiny blank maps with the given kinds: enough for the split."""
    import h5py

    n = len(kind)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = storage.ALBUS_FORMAT
        f["maps"] = np.zeros((n, 2, 3, 3), np.uint8)
        f["targets"] = np.zeros((n, 2, 3), np.float16)
        f["kind"] = np.asarray(kind, np.int8)
        for name, (dtype, empty) in storage.PARAMS.items():
            f[name] = np.full(n, empty, dtype)
    return path


def test_split_indices_for_a_seed_are_pinned(tmp_path):
    """The same seed must keep giving the same split (and so the same losses): pinned indices."""
    from tfphys.albus.pipeline import split_maps

    path = _kinds_file(tmp_path / "kinds.h5", [0, 1, 2, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 2, 0, 1])
    for (val_fraction, seed, max_maps), expected in (
        ((0.1, 0, None), ([0, 3, 7, 9, 11, 14, 16], [1, 4, 6, 8, 10, 12, 17], [5], [13])),
        ((0.25, 4, None), ([0, 7, 9, 11, 14, 16], [1, 6, 8, 12, 13, 17], [3, 5], [4, 10])),
        ((0.2, 1, 14), ([3, 5, 7, 11], [1, 4, 10, 12, 13], [0, 9], [6, 8])),
    ):
        split = split_maps(path, val_fraction=val_fraction, seed=seed, max_maps=max_maps)
        got = (split.train_background, split.train_chirp, split.val_background, split.val_chirp)
        assert tuple(a.tolist() for a in got) == expected and split.shape == (2, 3)


def test_max_target_normalisation_keeps_the_profile_and_empty_maps():
    from tfphys.albus.pipeline import normalise_targets

    y = np.zeros((3, 4, 5, 1), np.float32)
    y[1, 1, 2], y[1, 2, 3] = 0.2, 0.05
    y[2, 0, 0] = 0.7
    out = normalise_targets(y).numpy()
    assert not out[0].any()
    np.testing.assert_allclose(out[1, 1, 2], 1.0)
    np.testing.assert_allclose(out[1, 2, 3], 0.25)  # the intensity ratio along the track stays
    np.testing.assert_allclose(out[2].max(), 1.0)


# ---------------------------------------------------------------------------- U-Net
def test_unet_output_shape_equals_input_shape_for_166_by_1025():
    from tfphys.albus.model import build_albus

    model = build_albus(**TINY_NET)
    assert model.output_shape == (None, 166, 1025, 1)
    out = model(np.zeros((1, 166, 1025, 3), np.float32), training=False)
    assert out.shape == (1, 166, 1025, 1)


def test_a_small_unet_learns_to_light_up_along_the_chirp(small_file):
    """The training recipe of models/albus.toml (MSE, Adam, linear output from 0, BN momentum 0.9,
    peak-normalised targets) on a few small maps: the output must follow the chirp, not collapse
    to the all-zero map that a mostly-empty target invites."""
    from tfphys.albus.evaluate import map_sum
    from tfphys.albus.model import build_albus
    from tfphys.albus.pipeline import normalise_targets, read_maps

    with storage.open_albus(small_file) as f:
        kind, level = f["kind"][:], f["visibility"][:]
    chirps, backs = np.flatnonzero((kind == 1) & (level == 40)), np.flatnonzero(kind == 0)[:3]
    x, y = read_maps(small_file, np.concatenate([backs, chirps]))
    y = normalise_targets(y).numpy()
    keras.utils.set_random_seed(0)
    model = build_albus(input_shape=(*SMALL.shape, 3), down_filters=(8, 8, 16), up_filters=(16, 8),
                        convs_per_block=1, dropout=0.0, output_activation="linear", output_bias=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(x, y, batch_size=6, epochs=150, verbose=0)
    out = model.predict(x, verbose=0)[..., 0]
    on, off = out[3:][y[3:, ..., 0] > 0].mean(), out[3:][y[3:, ..., 0] == 0].mean()
    assert on > 5 * abs(off) and on > 0.1
    assert np.corrcoef(out[3:].ravel(), y[3:].ravel())[0, 1] > 0.5
    assert map_sum(None, out[3:]).min() > map_sum(None, out[:3]).max()


def test_crop_or_pad_handles_both_directions():
    from tfphys.albus.model import CropOrPadTo

    x = keras.ops.reshape(keras.ops.arange(2 * 6 * 1, dtype="float32"), (1, 2, 6, 1))
    ref = keras.ops.zeros((1, 3, 5, 4))
    y = keras.ops.convert_to_numpy(CropOrPadTo()([x, ref]))
    assert y.shape == (1, 3, 5, 1)
    np.testing.assert_array_equal(y[0, :2, :, 0], np.arange(12).reshape(2, 6)[:, :5])
    assert not y[0, 2].any()


def test_paper_widths_give_the_halved_kinet_size():
    from tfphys.albus.model import build_albus

    model = build_albus(input_shape=(42, 64, 3))
    assert 2.0e6 < model.count_params() < 3.2e6


def test_bad_unet_parameters_are_errors():
    from tfphys.albus.model import build_albus

    with pytest.raises(TfphysError, match="one up width per down step"):
        build_albus(down_filters=(4, 4, 4), up_filters=(4,))
    with pytest.raises(TfphysError, match="output_activation"):
        build_albus(**TINY_NET, output_activation="relu")
    with pytest.raises(TfphysError, match="bn_momentum"):
        build_albus(**TINY_NET, bn_momentum=1.0)


def test_train_save_load_export_and_evaluate_a_tiny_albus(small_file, tmp_path):
    from export.convert import convert, ops_used
    from tfphys import config as configs
    from tfphys.albus import evaluate as evaluation
    from tfphys.training import train

    cfg = configs.load(configs.default_config_path("albus"))
    cfg["model"].update(TINY_NET, input_shape=[*SMALL.shape, 3])
    cfg["pipeline"]["batch_size"] = 4
    cfg["data"]["val_fraction"] = 0.2
    cfg["train"]["epochs"] = 1
    result = train("albus", cfg, tmp_path / "run", data=small_file, verbose=0)
    model = keras.saving.load_model(result.model_path, safe_mode=True)
    ops = ops_used(convert(model, "float32"))
    assert "TRANSPOSE_CONV" in ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
    report = evaluation.evaluate(tmp_path / "run", configs.load(tmp_path / "run" / "config.toml"),
                                 tmp_path / "eval", small_file, 0)
    text = report.read_text()
    assert "largest_cluster" in text and "V=40" in text
    for png in ("efficiency", "fig10_chirps", "fig11_glitch", "fig13_visibility_series", "fig15_background"):
        assert (tmp_path / "eval" / f"{png}.png").stat().st_size > 0


# ---------------------------------------------------------------------------- evaluation statistics
def test_largest_cluster_rewards_connected_structure_over_scattered_pixels():
    from tfphys.albus.evaluate import largest_cluster, map_sum

    track, scattered = np.zeros((2, 40, 40), np.float32)
    track[np.arange(10), np.arange(10) + 5] = 0.5  # a diagonal: 8-connected
    scattered[np.arange(0, 40, 4), np.arange(0, 40, 4)[::-1]] = 0.5
    maps = np.stack([track, scattered])
    np.testing.assert_allclose(map_sum(None, maps), [5.0, 5.0])
    np.testing.assert_allclose(largest_cluster(maps), [5.0, 0.5])


def test_threshold_at_far_and_efficiency():
    from tfphys.albus.evaluate import efficiency, threshold_at_far

    background = np.arange(1.0, 11.0)
    assert threshold_at_far(background, None) == 10.0
    assert threshold_at_far(background, 0.1) == 9.0  # one background map of ten lies above
    with pytest.raises(TfphysError, match="cannot be set"):
        threshold_at_far(background, 0.01)
    eff = efficiency(np.array([5.0, 11.0, 12.0, 20.0]), np.array([12, 12, 60, 60]), 10.0)
    assert eff[12.0][0] == 0.5 and eff[60.0][0] == 1.0 and eff[60.0][2] == 2
