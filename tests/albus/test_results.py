"""The ALBUS evaluation in two steps: compute → AlbusResults, then the report written from it."""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfphys.albus import evaluate as E
from tfphys.albus import storage
from tfphys.albus.coherence import MapGeometry
from tfphys.albus.pipeline import read_maps

SMALL = MapGeometry(sample_rate_hz=1024.0, duration_s=120.0)  # 20 × 257 pixels, as in test_albus


def _constructed(stats, kind, level) -> E.AlbusResults:
    aurocs, thresholds, eff = E.detection(stats, kind, level)
    return E.AlbusResults("run", "maps.h5", kind, level, np.zeros(len(kind), int), SMALL, stats, aurocs, eff,
                          thresholds, set(), {}, np.zeros((0, *SMALL.shape, 3)), np.zeros((0, *SMALL.shape)))


def test_perfectly_separated_statistics_give_auroc_one_and_full_efficiency(tmp_path):
    kind = np.r_[np.zeros(10, int), np.ones(4, int), 2]
    level = np.r_[np.zeros(10), 12.0, 12.0, 40.0, 40.0, 0.0]
    stats = {"map_sum": np.r_[np.arange(10.0), 20.0, 21.0, 30.0, 31.0, 5.0],
             "largest_cluster": np.r_[np.arange(10.0), 0.5, 20.0, 30.0, 31.0, 5.0]}
    r = _constructed(stats, kind, level)
    assert r.aurocs["map_sum"] == 1.0
    assert r.aurocs["largest_cluster"] == pytest.approx(1 - 9 / 40)  # 0.5 beats 1 of 10 backgrounds
    assert r.thresholds == {("map_sum", "loudest background"): 9.0, ("map_sum", "FAR 10% of background"): 8.0,
                            ("largest_cluster", "loudest background"): 9.0,
                            ("largest_cluster", "FAR 10% of background"): 8.0}
    assert r.efficiency["map_sum", "loudest background"] == {12.0: (1.0, 0.0, 2), 40.0: (1.0, 0.0, 2)}
    assert r.efficiency["largest_cluster", "loudest background"][12.0] == pytest.approx((0.5, 0.5 / np.sqrt(2), 2))
    report = E.write_markdown(r, {}, tmp_path / "report.md").read_text()
    assert "| `map_sum` | 1.000 | 4.5 | 25.5 | 5 |" in report
    assert "| `map_sum` | loudest background | 9 | 1.00 ± 0.00 | 1.00 ± 0.00 |" in report
    assert "| `largest_cluster` | loudest background | 9 | 0.50 ± 0.35 | 1.00 ± 0.00 |" in report
    assert "10 background, 4 chirp, 1 glitch maps" in report


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    path = tmp_path_factory.mktemp("albus") / "maps.h5"
    storage.build(path, n_background=3, n_per_level=2, levels=(40,), n_glitch=1, seed=3, workers=1,
                  psd="analytic", geometry=SMALL, progress=False)
    return path


def test_compute_on_a_red_channel_model_then_report(maps, tmp_path):
    """A 'model' whose output is the input's red channel: its statistics are known from the file."""
    inputs = keras.Input((*SMALL.shape, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x[..., :1])(inputs))
    r = E.compute(model, maps, seed=0, run_dir="tiny-run")
    x, _ = read_maps(maps, np.arange(len(r.kind)))
    red_sums = x[..., 0].reshape(len(x), -1).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(r.stats["map_sum"], red_sums, rtol=1e-6)
    assert list(r.kind) == sorted(r.kind) and list(np.bincount(r.kind)) == [3, 2, 1]
    chirp_or_bg = r.kind < 2
    assert r.aurocs["map_sum"] == roc_auc_score(r.kind[chirp_or_bg] == 1, r.stats["map_sum"][chirp_or_bg])
    assert r.thresholds["map_sum", "loudest background"] == r.stats["map_sum"][r.kind == 0].max()
    assert set(r.efficiency) == {("map_sum", "loudest background"), ("largest_cluster", "loudest background")}
    assert r.series.shape == (len(E.SERIES_LEVELS), *SMALL.shape, 3) and r.series_outputs.shape[0] == 6
    assert {i for i in r.kept} == r.picks and r.caption(int(np.flatnonzero(r.kind == 2)[0])) == "glitch"
    report = E.write_markdown(r, {}, tmp_path / "report.md").read_text()
    assert report.startswith("# ALBUS evaluation — tiny-run")
    assert f"| `map_sum` | {r.aurocs['map_sum']:.3f} | {np.median(red_sums[:3]):.3g} |" in report
    eff = r.efficiency["map_sum", "loudest background"][40.0]
    assert f"| {r.thresholds['map_sum', 'loudest background']:.3g} | {eff[0]:.2f} ± {eff[1]:.2f} |" in report
