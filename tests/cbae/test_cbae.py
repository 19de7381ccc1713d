"""CBAE: the Landau toy detector (Eq. 1.2), its files and pipeline, the constrained bottleneck, a short
training through the one trainer, the §4 evaluation, the CLI and the TFLite export."""

import json

import h5py
import keras
import numpy as np
import pytest
from scipy.stats import landau

from tfphys import config as configs
from tfphys import registry, rundir
from tfphys.cbae import evaluate as ev
from tfphys.cbae import model as cbae
from tfphys.cbae import waveforms as wf
from tfphys.cbae.pipeline import cbae_datasets, held_out, split
from tfphys.cli import data_main, eval_main, train_main
from tfphys.errors import TfphysError
from tfphys.layers import FourierFeatures
from tfphys.training import make_optimizer, read_history

TINY = """
[data]
val_fraction = 0.25
default_n = 1600
default_seed = 5
[pipeline]
batch_size = 32
[model]
bottleneck = 2
encoder_filters = [8, 8]
encoder_units = [32]
decoder_units = [32, 64]
decoder_filters = [8, 8]
kernel_size = 3
encoder_batch_norm = true
decoder_margin = 1
decoder_fourier_octaves = 2
[train]
epochs = 4
seed = 0
[train.optimizer]
class_name = "Adam"
[train.optimizer.learning_rate]
module = "keras.optimizers.schedules"
class_name = "CosineDecay"
[train.optimizer.learning_rate.config]
initial_learning_rate = 3e-3
alpha = 0.1
decay_fraction = 1.0
"""


# ------------------------------------------------------------------------------ toy detector
def test_toy_model_is_eq_1_2_with_scipy_landau():
    x = wf.sample_positions()
    assert x.shape == (1024,) and x[0] == -10.0 and x[-1] == 10.0
    np.testing.assert_allclose(np.diff(x), 20 / 1023)
    params = np.array([[0.0, 0.0], [1.0, 1.0], [0.3, 0.8], [0.75, 0.1]])
    f = wf.response(params)
    for (theta, eta), row in zip(params, f):
        for i in (0, 150, 333, 512, 700, 850, 1023):
            direct = ((1 + 0.5 * theta) * landau.pdf(x[i], loc=7, scale=1)
                      + landau.pdf(x[i], loc=7 * (-1 + eta), scale=1.2 + theta))
            assert row[i] == pytest.approx(direct, rel=1e-12)
            # L(μ|c) is location μ and scale c of the standard Landau density
            standard = ((1 + 0.5 * theta) * landau.pdf(x[i] - 7)
                        + landau.pdf((x[i] - 7 * (eta - 1)) / (1.2 + theta)) / (1.2 + theta))
            assert row[i] == pytest.approx(standard, rel=1e-9)
    # the direct pulse peaks near x = 7 whatever p; the reflected one moves with η to 7(η − 1)
    peak = x[np.argmax(f[:, 700:], axis=1) + 700]
    np.testing.assert_allclose(peak, x[np.argmax(landau.pdf(x, 7, 1))], atol=0.1)
    with pytest.raises(TfphysError, match=r"shape \(n, 2\)"):
        wf.response(np.zeros((3, 3)))


def test_normalisation_puts_noiseless_waveforms_in_the_unit_interval():
    axis = np.linspace(0, 1, 11)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    clean = wf.clean_waveforms(grid)
    # (f + 0.1)/0.8 with f ≥ 0: the baseline sits at 0.125 and the largest pulse stays below 1
    assert clean.min() == pytest.approx(0.125, abs=1e-6)
    assert np.all(clean >= 0.125 - 1e-7)
    assert 0.5 < clean.max() < 1.0
    np.testing.assert_allclose(wf.denormalise(clean), wf.response(grid), atol=1e-6)
    # noise σ = 0.05 before normalisation = 6.25 % of the maximum amplitude after it
    sim = wf.simulate(400, seed=3)
    residual = sim["waveforms"] - sim["clean"]
    assert residual.std() == pytest.approx(0.05 / 0.8, rel=0.01)
    assert abs(residual.mean()) < 5e-4
    np.testing.assert_allclose(sim["clean"], wf.clean_waveforms(sim["params"]), atol=1e-6)
    assert 0 <= sim["params"].min() and sim["params"].max() < 1
    assert np.array_equal(wf.simulate(400, seed=3)["waveforms"], sim["waveforms"])
    assert not np.array_equal(wf.simulate(400, seed=4)["waveforms"], sim["waveforms"])


# ------------------------------------------------------------------------------ files, pipeline
def test_file_round_trip_is_reproducible_and_validated(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert wf.generate(300, a, seed=9, progress=False) == 300
    wf.generate(300, b, seed=9, progress=False)
    da, db = wf.read_waveforms(a), wf.read_waveforms(b)
    assert np.array_equal(da.waveforms, db.waveforms) and np.array_equal(da.params, db.params)
    np.testing.assert_allclose(da.clean, wf.clean_waveforms(da.params), atol=1e-6)
    assert da.offset == 0.1 and da.scale == 0.8 and da.noise_sigma == 0.05 and len(da) == 300
    assert wf.is_waveform_file(a) and "300 waveforms" in wf.summary(a)

    with h5py.File(a, "a") as f:
        del f["params"]
    with pytest.raises(TfphysError, match="lacks dataset"):
        wf.read_waveforms(a)
    with h5py.File(b, "a") as f:
        f["waveforms"][7, 3] = np.nan
    with pytest.raises(TfphysError, match="waveform 7 has non-finite"):
        wf.read_waveforms(b)
    c = tmp_path / "c.h5"
    with h5py.File(c, "w") as f:
        f["waveforms"] = np.zeros((4, 512), np.float32)
        f["params"] = np.zeros((4, 2), np.float32)
        f["x"] = np.zeros(1024, np.float32)
    with pytest.raises(TfphysError, match=r"per-waveform shape \(512,\), expected \(1024,\)"):
        wf.read_waveforms(c)
    with pytest.raises(TfphysError, match="does not exist"):
        wf.read_waveforms(tmp_path / "missing.h5")


def test_pipeline_split_targets_and_seeded_shuffle(tmp_path):
    path = tmp_path / "w.h5"
    wf.generate(100, path, seed=1, progress=False)
    assert split(50_000).n_train == 40_000 and split(50_000).val[[0, -1]].tolist() == [40_000, 49_999]
    # pinned: Python's round (half to even) of n · val_fraction is held out, at the end
    assert [split(*args).n_train for args in ((10, 0.25), (10, 0.25, 6), (7, 0.5), (9, 0.5))] == [8, 4, 3, 5]
    with pytest.raises(TfphysError, match="val_fraction"):
        split(100, 1.5)
    train, val = cbae_datasets(path, batch_size=16, seed=2, val_fraction=0.2)
    s, targets = next(iter(train))
    assert s.shape == (16, 1024) and targets.shape == (16, 2 + 1024)
    p_target, s_target = cbae.split_output(targets.numpy())
    assert np.array_equal(s.numpy(), s_target)                     # an autoencoder: target = input
    rows = [int(np.flatnonzero((wf.read_waveforms(path).waveforms == row).all(1))[0]) for row in s.numpy()]
    assert np.array_equal(p_target, wf.read_waveforms(path).params[rows])   # p travels with its s
    again = next(iter(cbae_datasets(path, batch_size=16, seed=2, val_fraction=0.2)[0]))[0]
    assert np.array_equal(s.numpy(), again.numpy())
    data = wf.read_waveforms(path)
    val_params = np.concatenate([cbae.split_output(t.numpy())[0] for _, t in val])
    assert np.array_equal(val_params, data.params[80:])             # held-out: the last 20 %, in order
    assert np.array_equal(held_out(path).clean, data.clean[80:])
    # an epoch is a permutation of the 80 training waveforms, reshuffled every epoch
    index = {row.tobytes(): i for i, row in enumerate(data.waveforms)}
    epochs = [[index[row.tobytes()] for x, _ in train for row in x.numpy()] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(80)) and epochs[0] != epochs[1]


# ------------------------------------------------------------------------------ the model
def test_bottleneck_is_the_parameters_and_other_widths_are_refused(tmp_path):
    model = cbae.build_cbae(encoder_filters=[4], encoder_units=[8], decoder_units=[8])
    enc, dec = model.get_layer("encoder"), model.get_layer("decoder")
    assert enc.output.shape == (None, 2) and dec.input.shape == (None, 2)
    assert model.output.shape == (None, 2 + 1024)
    with pytest.raises(TfphysError, match="exactly dim\\(p\\) = 2"):
        cbae.build_cbae(bottleneck=3)
    spec = registry.get("cbae")
    with pytest.raises(TfphysError, match="bottleneck = 4"):
        registry.build(spec, {"bottleneck": 4})
    cfg = configs.load(configs.default_config_path("cbae"))
    assert cfg["model"]["bottleneck"] == 2 and cfg["pipeline"]["batch_size"] == 32
    lr = cfg["train"]["optimizer"]["learning_rate"]["config"]          # Adam, initial 5e-4, decayed
    assert cfg["train"]["optimizer"]["class_name"] == "Adam" and lr["initial_learning_rate"] == 5e-4
    assert lr["decay_fraction"] == 1.0 and cfg["train"]["epochs"] == 4   # over the whole training
    # the trainer resolves the fraction into steps: 4 epochs × 40k / 32 = 5000 on the paper's data
    schedule = make_optimizer(cfg["train"], total_steps=4 * 40_000 // 32)._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay) and schedule.decay_steps == 5000
    assert schedule.initial_learning_rate == 5e-4
    assert make_optimizer(cfg["train"], total_steps=100)._learning_rate.decay_steps == 100
    with pytest.raises(TfphysError, match="decay_fraction needs the number of training steps"):
        make_optimizer(cfg["train"])
    # the three jobs are the parts of one model, and it loads in safe mode
    s = wf.simulate(8, seed=0)["waveforms"]
    np.testing.assert_allclose(cbae.denoise(model, s), cbae.generate(model, cbae.estimate(model, s)), atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(cbae.estimate(loaded, s), cbae.estimate(model, s), atol=1e-6)
    with pytest.raises(TfphysError, match=r"shape \(n, 2\)"):
        cbae.generate(model, np.zeros((3, 5)))


def test_decoder_fourier_features_margin_and_encoder_batch_norm(tmp_path):
    # γ(p) = [p, sin(π 2ʲ p), cos(π 2ʲ p)]: exact, and one-to-one on [0, 1] (the corners differ)
    p = np.array([[0.0, 1.0], [1.0, 0.0], [0.3, 0.7]], np.float32)
    gamma = keras.ops.convert_to_numpy(FourierFeatures(3)(p))
    angles = np.pi * p[:, :, None] * 2.0 ** np.arange(3)
    expected = np.concatenate([p, np.sin(angles).reshape(3, -1), np.cos(angles).reshape(3, -1)], axis=1)
    np.testing.assert_allclose(gamma, expected, atol=1e-6)
    assert not np.allclose(gamma[0], gamma[1])
    model = cbae.build_cbae(encoder_filters=[4, 4], encoder_units=[8], decoder_units=[8],
                            decoder_filters=[4, 4], decoder_margin=2, decoder_fourier_octaves=3,
                            encoder_batch_norm=True)
    dec, enc = model.get_layer("decoder"), model.get_layer("encoder")
    assert dec.get_layer("fourier_p").output.shape == (None, 2 * 7)
    # the decoder runs 2 samples longer at each end of its 256-sample start, cropped after the last conv
    assert dec.get_layer("sequence").output.shape[1] == 256 + 4
    assert dec.get_layer("crop_margin").cropping == (8, 8) and dec.output.shape == (None, 1024)
    # batch norm: at inference a waveform's estimate does not depend on the rest of its batch
    s = wf.simulate(16, seed=3)["waveforms"]
    assert isinstance(enc.get_layer("norm0"), keras.layers.BatchNormalization)
    np.testing.assert_allclose(cbae.estimate(model, s[:1]), cbae.estimate(model, s)[:1], atol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(cbae.generate(loaded, p), cbae.generate(model, p), atol=1e-6)
    with pytest.raises(TfphysError, match="decoder_margin"):
        cbae.build_cbae(decoder_margin=-1)
    with pytest.raises(TfphysError, match="decoder_fourier_octaves"):
        cbae.build_cbae(decoder_fourier_octaves=-2)
    with pytest.raises(TfphysError, match="encoder_kernel_size must be a positive"):
        cbae.build_cbae(encoder_kernel_size=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny CBAE trained by ``tfphys-train cbae`` on its default data (cached in a temp dir)."""
    root = tmp_path_factory.mktemp("cbae")
    mp = pytest.MonkeyPatch()
    mp.setenv("TFPHYS_CACHE", str(root / "cache"))
    config = root / "tiny.toml"
    config.write_text(TINY)
    run = root / "run"
    assert train_main(["cbae", "--config", str(config), "--out", str(run)]) == 0
    yield run, rundir.read_config(run), config  # resolved: every key, defaults included
    mp.undo()


def test_short_training_reduces_both_loss_terms_and_generates_better_than_the_noise(trained):
    run, cfg, config = trained
    path = cfg["data"]["path"]
    assert "cbae-waveforms-n1600-seed5" in path                      # the cached default data
    test = held_out(path, val_fraction=0.25)
    keras.utils.set_random_seed(0)
    untrained = registry.build(registry.get("cbae"), dict(cfg["model"]))
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    # the schedule spans the training the trainer ran: 4 epochs × ⌈1200 / 32⌉ batches
    assert model.optimizer._learning_rate.decay_steps == 4 * 38
    spec = registry.get("cbae")
    for m in (untrained, model):
        m.compile(loss=spec.loss(), metrics=spec.metrics())
    targets = np.concatenate([test.params, test.waveforms], axis=1)
    before = untrained.evaluate(test.waveforms, targets, return_dict=True, verbose=0)
    after = model.evaluate(test.waveforms, targets, return_dict=True, verbose=0)
    assert after["loss"] == pytest.approx(after["signal_loss"] + after["params_loss"], rel=1e-4)
    assert after["signal_loss"] < 0.5 * before["signal_loss"]
    assert after["params_loss"] < 0.5 * before["params_loss"]
    # generate(true p) is closer to f(p) than the noisy input is, and closer than the mean waveform
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))  # noqa: E731
    generated = cbae.generate(model, test.params)
    noise, error = rms(test.waveforms - test.clean), rms(generated - test.clean)
    assert error < noise
    assert error < rms(test.clean.mean(axis=0) - test.clean)
    history = read_history(run / "history.csv")
    assert len(history) == 4 and {"params_loss", "signal_loss", "val_params_loss"} <= set(history[-1])


def test_eval_writes_the_section_4_report(trained, tmp_path):
    run, cfg, _ = trained
    assert eval_main([str(run), "--out", str(tmp_path / "eval")]) == 0
    report = (tmp_path / "eval" / "report.md").read_text()
    for name in ("fig5_parameter_errors", "fig7_generation_error", "fig8_denoising_error", "fig9_examples"):
        assert (tmp_path / "eval" / f"{name}.png").stat().st_size > 10_000 and f"({name}.png)" in report
    numbers = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert numbers["n_test"] == 400
    # the report's numbers are the model's: recompute the denoising bias and one parameter σ
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    test = held_out(cfg["data"]["path"], val_fraction=0.25)
    d = cbae.denoise(model, test.waveforms) - test.clean
    assert numbers["denoising"]["bias"] == pytest.approx(d.mean(), rel=1e-3, abs=1e-6)
    assert numbers["parameters"]["eta"]["std"] == pytest.approx(
        (cbae.estimate(model, test.waveforms) - test.params)[:, 1].std(), rel=1e-3)
    assert numbers["noise_rms"] == pytest.approx(0.0625, rel=0.02)


def test_evaluation_helpers_on_known_inputs():
    rng = np.random.default_rng(0)
    mu, sigma = ev.gaussian_fit(rng.normal(0.3, 2.0, 200_000))
    assert mu == pytest.approx(0.3, abs=0.02) and sigma == pytest.approx(2.0, rel=0.01)
    with pytest.raises(TfphysError, match="a Gaussian fit needs ≥ 10 finite values, got 2"):
        ev.gaussian_fit([1.0, 2.0])
    truth = rng.normal(size=(5, 1024))
    assert ev.generation_errors(truth, truth)["worst"] == 0.0
    shifted = ev.denoising_errors(truth + 0.003, truth)
    assert shifted["bias"] == pytest.approx(0.003) and shifted["sigma"] == pytest.approx(0, abs=1e-9)
    mse = rng.uniform(size=1000)
    pct, idx = ev.example_indices(mse)
    assert len(idx) == 35 and idx[0] == np.argmin(mse) and idx[-1] == np.argmax(mse)
    assert np.all(np.diff(mse[idx]) >= 0)
    axis, grid = ev.parameter_grid(5)
    assert grid.shape == (25, 2) and tuple(grid[7]) == (axis[2], axis[1])   # point i·n + j = (θ_j, η_i)


# ------------------------------------------------------------------------------ CLI and export
def test_data_cli_writes_and_describes_waveforms(tmp_path, capsys):
    out = tmp_path / "w.h5"
    assert data_main(["cbae", "--n", "64", "--out", str(out), "--seed", "3"]) == 0
    assert "64 waveforms" in capsys.readouterr().out and len(wf.read_waveforms(out)) == 64
    assert data_main(["info", str(out)]) == 0 and "tfphys.waveforms" in capsys.readouterr().out
    assert data_main(["cbae", "--n", "0", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfphys-data: error: --n must be a positive") and err.count("\n") == 1


def test_export_float16_with_encoder_and_decoder(trained, capsys):
    from export.cli import export_main
    from export.convert import ops_used
    from export.exporter import TOLERANCE
    from export.latency import interpreter, run_tflite

    run, cfg, _ = trained
    out = run / "export"
    assert export_main([str(run), "--float16", "--iterations", "5", "--warmup", "1", "--samples", "16",
                        "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["submodels"]) == {"encoder", "decoder"}
    # the report's |Δ| and tolerance, recomputed from the float16 file on the 16 training waveforms it used
    x = registry.get("cbae").representative(cfg, 16, 0)
    assert report["n_validation"] == 16 and report["auroc_exported"] is None
    reference = keras.saving.load_model(run / "model.keras").predict(x, verbose=0)
    interp = interpreter((out / "model_float16.tflite").read_bytes())
    exported = np.concatenate([run_tflite(interp, [x[i:i + 1]])[0] for i in range(len(x))])
    diff = np.abs(exported.astype(np.float64) - reference)
    assert report["max_abs_diff"] == pytest.approx(diff.max(), rel=1e-4)
    assert report["mean_abs_diff"] == pytest.approx(diff.mean(), rel=1e-4)
    scale = max(1.0, float(np.abs(reference).max()))  # [p′ ‖ s′]: tolerances in units of the output's scale
    assert report["tolerance"] == pytest.approx([t * scale for t in TOLERANCE["float16"]])
    for name in ("model", "encoder", "decoder"):
        ops = ops_used((out / f"{name}_float16.tflite").read_bytes())
        assert not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
