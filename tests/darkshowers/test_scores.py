"""Anomaly scores (CoDAE §4.6), physics baselines (Eq. 4) and detection metrics (§5.1)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfphys import metrics
from tfphys.darkshowers import scores as S
from tfphys.errors import TfphysError


def _masks():
    x = np.zeros((2, 4, 5, 1))
    x[0, 0, :3] = 1   # 3 hits
    x[1, 1:3, 1] = 1  # 2 hits
    return x


def test_perfect_reconstruction_scores():
    x = _masks()
    assert np.all(S.sse(x, x) == 0) and np.all(S.sae(x, x) == 0) and np.all(S.sae_mask(x, x) == 0)
    assert np.allclose(S.inverse_dice(x, x), 1.0)
    assert np.allclose(S.pixel_sum(x, x), [3, 2])
    assert np.all(S.bce(x, x) < 1e-4 * x[0].size)  # only the ε clipping remains


def test_scores_on_known_reconstructions():
    x = _masks()
    x_hat = np.full_like(x, 0.5)
    n = x[0].size
    assert np.allclose(S.sse(x, x_hat), n * 0.25)
    assert np.allclose(S.sae(x, x_hat), n * 0.5)
    assert np.allclose(S.bce(x, x_hat), n * np.log(2))
    assert np.allclose(S.pixel_sum(x, x_hat), n * 0.5)
    # Dice⁻¹ = (Σx² + Σx̂²) / (2 Σ x x̂): event 0 has 3 hits → (3 + 0.25 n) / (2 · 1.5)
    assert np.allclose(S.inverse_dice(x, x_hat)[0], (3 + 0.25 * n) / 3.0)
    # SAE-mask counts pixels whose occupancy differs: x̂ = 0.5 is not above the ½ threshold.
    assert np.allclose(S.sae_mask(x, x_hat), [3, 2])
    assert np.isinf(S.inverse_dice(x, np.zeros_like(x))).all()


def test_bce_argument_order_matters():
    x, x_hat = _masks(), np.full_like(_masks(), 0.2)
    assert not np.allclose(S.bce(x, x_hat), S.bce(x_hat, x))
    with pytest.raises(ValueError, match="differ in shape"):
        S.sse(x, x_hat[:1])


def test_total_energy_is_eq4_per_channel_as_the_evaluation_reports_it(tmp_path):
    """Eq. 4, s(c) = Σ_ij x_ijc per channel, pinned where tfphys-eval reports it: the "Total energy"
    rows read from a test file (and their AUROC) are S.total_energy of the file's images."""
    from tfphys.darkshowers import evaluate as E
    from tfphys.darkshowers import format as formats

    images = np.zeros((3, *formats.IMAGE_SHAPE), np.float32)
    images[0, 1, 2] = [1.0, 2.0, 3.0]          # QCD: one deposit in each channel
    images[1, :6, :4, 2] = 0.5                 # QCD: 24 HCAL cells of 0.5
    images[2, 100:108, 7, 0] = 0.25            # signal: 8 tracks of 0.25
    expected = [[1.0, 2.0, 3.0], [0.0, 0.0, 12.0], [2.0, 0.0, 0.0]]
    assert S.total_energy(images).dtype == np.float64
    assert S.total_energy(images).tolist() == expected
    path = tmp_path / "eq4.h5"
    formats.write_darkshowers(path, [{"images": images, "label": np.array([0, 0, 1], np.int8),
                                      "mass": np.array([0, 0, 400], np.float32),
                                      "n_tracks": np.array([1, 0, 8], np.int32)}], generator="test")
    test = E.read_test_file(path)
    rows = E.physics_scores(test)
    assert list(rows) == ["Total energy (Trk)", "Total energy (ECAL)", "Total energy (HCAL)", "nTracks"]
    assert [rows[f"Total energy ({c})"].tolist() for c in E.CHANNELS] == np.transpose(expected).tolist()
    table = E.detection_table(rows, test["label"], test["mass"])
    assert table["Total energy (Trk)"]["auroc"] == {"SUEP 400": 1.0}   # signal 2 > QCD 1, 0
    assert table["Total energy (HCAL)"]["auroc"] == {"SUEP 400": 0.0}  # signal 0 < QCD 3, 12
    with pytest.raises(ValueError):
        S.total_energy(images[0])


def test_auroc_and_fpr40_on_a_constructed_roc():
    # 10 background scores 0..9, 10 signal scores 5.5..14.5: at 40 % signal efficiency (the 4
    # highest signals, ≥ 11.5) no background passes; between 60 and 70 % (thresholds 9.5 … 8.5)
    # only background 9 passes → 0.1.
    bkg, sig = np.arange(10.0), np.arange(10.0) + 5.5
    y, s = np.r_[np.zeros(10), np.ones(10)], np.r_[bkg, sig]
    # 4 + 3 + 2 + 1 inverted pairs of 100
    assert metrics.auroc(y, s) == pytest.approx(roc_auc_score(y, s)) == pytest.approx(1 - 10 / 100)
    assert metrics.fpr_at_tpr(y, s, 0.4) == 0.0
    assert metrics.fpr_at_tpr(y, s, 0.65) == pytest.approx(0.1)
    # reversed scores: the ROC is flat at TPR 0.4 from FPR 0.9 to 1.0, and interp takes the segment's end
    assert metrics.fpr_at_tpr(y, -s, 0.4) == 1.0
    with pytest.raises(TfphysError, match="both background and signal"):
        metrics.auroc(np.zeros(5), np.arange(5))


def test_bootstrap_auroc_on_balanced_full_subsets_is_the_full_auroc():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(50), np.ones(50)]
    s = rng.normal(size=100) + y
    # Subsets holding every event of each class are permutations of the data: same AUROC each time.
    boot = metrics.bootstrap_auroc(y, s, n_subsets=20, subset_size=100, seed=1)
    assert np.allclose(boot, roc_auc_score(y, s))
    small = metrics.bootstrap_auroc(y, s, n_subsets=200, subset_size=40, seed=1)
    assert small.std() > 0 and abs(small.mean() - roc_auc_score(y, s)) < 0.03


@pytest.mark.parametrize("n_a, n_b, shift", [(60, 50, 0.01), (40, 40, 0.0), (50, 70, -0.02)])
def test_aso_returns_deepsigs_epsilon_min(n_a, n_b, shift):
    from deepsig import aso as deepsig_aso

    rng = np.random.default_rng(n_a)
    a, b = rng.normal(0.8 + shift, 0.01, n_a), rng.normal(0.8, 0.01, n_b)
    ours = metrics.aso(a, b, num_bootstrap_iterations=100, seed=5)
    theirs = deepsig_aso(a, b, num_bootstrap_iterations=100, num_jobs=1, show_progress=False, seed=5)
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_aso_separated_vs_identical_distributions():
    rng = np.random.default_rng(3)
    good, bad = rng.normal(0.9, 0.01, 500), rng.normal(0.7, 0.01, 500)
    assert metrics.aso(good, bad) == 0.0          # A clearly dominates B
    assert metrics.aso(bad, good) > 0.99          # and not the other way round
    a, b = rng.normal(0.8, 0.01, 500), rng.normal(0.8, 0.01, 500)
    assert metrics.aso(a, b) > 0.2 and metrics.aso(b, a) > 0.2  # same law: no confident verdict
