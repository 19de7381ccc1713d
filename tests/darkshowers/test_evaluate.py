"""tfphys-eval on dark-shower models: tables, per-event scores, plots; bad test files."""

import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import sparse_events
from tfphys import config as configs
from tfphys.cli import eval_main
from tfphys.darkshowers import format as formats
from tfphys.darkshowers.codae import build_cae, build_codae
from tfphys.darkshowers.codvae import build_codvae
from tfphys.darkshowers.pipeline import load_masks

TINY = dict(encoder_filters=[8] * 4, decoder_filters=[8] * 4, latent_channels=4)


def _run(tmp_path, name, build, data, **kwargs):
    keras.utils.set_random_seed(0)
    run = tmp_path / name
    run.mkdir()
    build(**TINY, **kwargs).save(run / "model.keras")
    configs.save({"model_name": name, "data": {"path": str(data)}, "model": {}}, run / "config.toml")
    return run


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    """30 QCD events, 20 SUEP at 400 GeV (busier) and 20 SVJ at 3.1 TeV."""
    path = tmp_path_factory.mktemp("eval") / "test.h5"
    formats.write_darkshowers(path, [
        sparse_events(30, seed=21),
        sparse_events(20, label=1, mass=400.0, hits=(80, 200), seed=22),
        sparse_events(20, label=2, mass=3100.0, hits=(30, 120), seed=23),
    ], generator="test")
    return path


def test_eval_writes_tables_scores_and_plots(tmp_path, qcd_file, test_file, capsys):
    runs = [_run(tmp_path, "codae", build_codae, qcd_file, mask_filters=[8] * 4),
            _run(tmp_path, "cae", build_cae, qcd_file),
            _run(tmp_path, "codvae", build_codvae, qcd_file, mask_filters=[8] * 4)]
    out = tmp_path / "eval"
    assert eval_main([*map(str, runs), "--data", str(test_file), "--out", str(out)]) == 0
    assert "tables.md" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    points = ["SUEP 400", "SVJ 3.1"]
    detection = results["detection"]
    for key in ("nTracks", "Total energy (Trk)", "CoDAE (BCE)", "CAE (SSE)", "Cat. CoDVAE (KL-F)",
                "Cat. CoDVAE (KL-R)", "Cat. CoDVAE (SSE)"):
        assert list(detection[key]["auroc"]) == points
    assert "Cat. CoDVAE (SAE)" not in detection  # equals SSE on the Bernoulli mode
    assert any(k.startswith("CoDAE (Z1") or k.startswith("CoDAE (−Z1") for k in detection)
    # nTracks separates the busier SUEP sample perfectly by construction of the test file
    assert detection["nTracks"]["auroc"]["SUEP 400"] > 0.95
    with h5py.File(out / "scores.h5") as f:
        with h5py.File(test_file) as src:
            n_tracks = src["n_tracks"][:]
        assert len(f["label"]) == 70 and np.array_equal(f["nTracks"][:], n_tracks)  # the file's own column
        # the stored per-event scores reproduce the tables' AUROC
        from sklearn.metrics import roc_auc_score

        keep = (f["label"][:] == 0) | (f["mass"][:] == 400.0)
        auc = roc_auc_score(f["label"][:][keep] != 0, f["CoDAE (BCE)"][:][keep])
        assert auc == pytest.approx(detection["CoDAE (BCE)"]["auroc"]["SUEP 400"])
    assert set(results["reconstruction"]) == {"CoDAE", "CAE", "Cat. CoDVAE"}
    # Table 4's SSIM (mean, std over the 30 QCD events), recomputed from the saved CoDAE
    qcd = load_masks(test_file, np.arange(30))
    recon = keras.saving.load_model(runs[0] / "model.keras").predict(qcd, batch_size=64, verbose=0)
    ssim = tf.image.ssim(tf.constant(qcd), tf.constant(recon), max_val=1.0).numpy().astype(np.float64)
    assert results["reconstruction"]["CoDAE"]["SSIM"] == pytest.approx([ssim.mean(), ssim.std()], rel=1e-4)
    aso = results["aso"]
    # nTracks is perfect on SUEP 400: no candidate is better than it (ε_min near 1; measured 0.992–0.993)
    assert aso and all(row["nTracks"]["SUEP 400"] > 0.95 for row in aso.values())
    # ε_min(A better than B) + ε_min(B better than A) ≈ 1 for two candidates (measured within 0.005)
    pairs = [(a, b) for a in aso for b in aso[a] if a < b and a in aso.get(b, {})]
    assert len(pairs) == 3  # CoDAE (Z1), Cat. CoDVAE (Z1), CAE (BCE): each the others' baseline
    for a, b in pairs:
        for point in points:
            assert aso[a][b][point] + aso[b][a][point] == pytest.approx(1.0, abs=0.02)
    tables = (out / "tables.md").read_text()
    for title in ("Table 1", "Table 2", "Table 3", "Table 4"):
        assert title in tables
    for png in ("roc.png", "reconstructions.png", "latent_CoDAE.png", "latent_Cat_CoDVAE.png"):
        assert (out / png).stat().st_size > 0


def test_a_test_file_without_signal_is_a_clear_error(tmp_path, qcd_file, capsys):
    run = _run(tmp_path, "cae", build_cae, qcd_file)
    assert eval_main([str(run), "--data", str(qcd_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no signal events" in err[0]


def test_eval_refuses_a_non_run_dir(tmp_path, capsys):
    assert eval_main([str(tmp_path)]) == 1
    assert "not a tfphys-train run dir" in capsys.readouterr().err
