"""The dark-shower evaluation in two steps: compute → DarkShowerResults, then the report written from it."""

import json

import h5py
import keras
import numpy as np
import pytest

from tfphys import config as configs
from tfphys import registry
from tfphys.cli import eval_main
from tfphys.darkshowers import evaluate as E
from tfphys.darkshowers.codae import build_cae


def _constructed_test(n=8, seed=0):
    """``n`` QCD and ``n`` SUEP (400 GeV) events: nTracks separates them perfectly, the tracker's
    total energy ranks them exactly the wrong way round."""
    rng = np.random.default_rng(seed)
    masks = (rng.uniform(size=(2 * n, 72, 58, 1)) < 0.02).astype(np.float32)
    label = np.r_[np.zeros(n, int), np.ones(n, int)]
    energy = np.stack([np.r_[np.arange(n) + 100.0, np.arange(n) + 1.0],
                       rng.uniform(size=2 * n), rng.uniform(size=2 * n)], axis=1)
    return {"masks": masks, "energy": energy, "label": label, "mass": np.r_[np.zeros(n), np.full(n, 400.0)],
            "n_tracks": np.r_[np.arange(n) + 1.0, np.arange(n) + 50.0]}


@pytest.fixture(scope="module")
def results():
    keras.utils.set_random_seed(0)
    model = build_cae(encoder_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4)
    return E.compute(_constructed_test(), [(registry.get("cae"), model)], test_file="constructed.h5", seed=0,
                     n_subsets=20, progress=False)


def test_results_hold_the_tables_numbers(results):
    assert results.physics == ["Total energy (Trk)", "Total energy (ECAL)", "Total energy (HCAL)", "nTracks"]
    assert results.detection["nTracks"]["auroc"] == {"SUEP 400": 1.0}
    assert results.detection["nTracks"]["fpr40"] == {"SUEP 400": 0.0}
    assert results.detection["nTracks"]["mean"] == {"SUEP": (1.0, 0.0)}
    assert results.detection["Total energy (Trk)"]["auroc"] == {"SUEP 400": 0.0}
    assert np.array_equal(results.scores["Total energy (Trk)"], _constructed_test()["energy"][:, 0])
    assert results.per_model == {"CAE": [f"CAE ({k})" for k in ("BCE", "SSE", "SAE", "SAE-mask", "Dice⁻¹",
                                                                   "PixelSum")]}
    assert results.best_scores["CAE"] in results.per_model["CAE"]
    assert set(results.aso) == {results.best_scores["CAE"]}
    best_energy = max(results.physics[:3], key=lambda k: results.detection[k]["auroc"]["SUEP 400"])
    assert set(results.aso[results.best_scores["CAE"]]) == {"nTracks", best_energy}
    assert "20 class-balanced subsets of 16 events" in results.aso_settings
    assert set(results.reconstruction["CAE"]) == {"MSE", "SSE", "SSIM"}
    assert results.reconstructions["CAE"].shape == results.masks.shape and results.latents == {}
    summary = results.summary()
    assert (summary["n_events"], summary["n_background"], summary["n_signal"]) == (16, 8, 8)


def test_the_report_is_written_from_the_results(results, tmp_path):
    tables = E.write_report(results, tmp_path).read_text()
    row = next(line for line in tables.splitlines() if line.startswith("| nTracks |"))
    assert "100.00" in row
    trk = next(line for line in tables.splitlines() if line.startswith("| Total energy (Trk) |"))
    assert trk.split(" | ")[1].strip("*") == "0.00"
    mse = results.reconstruction["CAE"]["MSE"]
    assert f"| MSE | {mse[0]:.4g} (± {mse[1]:.2g}) |" in tables
    assert "16 test events: 8 QCD, 8 signal. Models: CAE." in tables
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["detection"]["nTracks"]["auroc"]["SUEP 400"] == 1.0
    assert saved == json.loads(json.dumps(results.summary()))
    with h5py.File(tmp_path / "scores.h5") as f:
        assert np.array_equal(f["nTracks"][:], results.scores["nTracks"])
        assert f.attrs["test_file"] == "constructed.h5"
    for png in ("roc.png", "reconstructions.png"):
        assert (tmp_path / png).stat().st_size > 0


def test_a_corrupt_model_of_any_compared_run_is_one_error_line(tmp_path, labelled_file, capsys):
    runs = []
    for name in ("cae", "codae"):
        run = tmp_path / name
        run.mkdir()
        configs.save({"model_name": name, "model": {}}, run / "config.toml")
        runs.append(run)
    keras.utils.set_random_seed(0)
    build_cae(encoder_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4).save(runs[0] / "model.keras")
    (runs[1] / "model.keras").write_bytes(b"not a zip file")
    assert eval_main([str(runs[0]), str(runs[1]), "--data", str(labelled_file), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not load a Keras model" in err[0] and "codae" in err[0], err
