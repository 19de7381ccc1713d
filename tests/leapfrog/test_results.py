"""The LeapfrogLayers evaluation in two steps: compute → LeapfrogResults, then the report written from it."""

import keras
import numpy as np
import pytest

from tfphys import config as configs
from tfphys.errors import TfphysError
from tfphys.leapfrog import evaluate as E
from tfphys.leapfrog import u1
from tfphys.leapfrog.sampler import build_leapfrog

# no β scan (each of its samplers compiles its own graphs: seconds), one HMC length
SIZES = {"thermalise": 2, "trajectories": 8, "betas": [], "scan_trajectories": 6, "scan_thermalise": 1,
         "lengths": [1]}
HISTORY = [{"epoch": 0.0, "beta": 1.5, "acceptance": 0.9, "dq_int": 0.125, "dq_real_sq": 0.25,
            "val_acceptance": 0.8, "val_dq_int": 0.0625, "val_loss": -0.03125}]


@pytest.fixture(scope="module")
def untrained():
    """An untrained sampler: plain HMC with ε_k = 0.25 (its nets output zero)."""
    keras.utils.set_random_seed(0)
    return build_leapfrog(lattice_size=3, n_leapfrog=2, n_chains=4, beta=2.0, units=[4], step_size=0.25)


@pytest.fixture(scope="module")
def results(untrained):
    return E.compute(untrained, settings=SIZES, seed=3, progress=False, source="tiny", history=HISTORY)


def test_results_hold_the_comparison(results):
    r = results
    assert (r.beta, r.lattice_size, r.chains, r.n_leapfrog) == (2.0, 3, 4, 2)
    assert r.trajectory_length == pytest.approx(0.5) and np.allclose(r.step_sizes, 0.25)
    assert [x.name for x in r.main] == ["HMC", "LeapfrogLayers"] and r.betas == [] and r.scan == {}
    assert r.main[0].chains.charge_int.shape == (8, 4) and r.main[1].chains.acceptance.shape == (8, 4)
    assert r.lengths == pytest.approx([0.25]) and len(r.hmc_tau) == 1
    assert r.trained_tau == [r.main[1].tau["charge_real"]]  # the target β is not in the (empty) scan
    assert r.settings == {**E.DEFAULTS, **SIZES}
    # untrained = HMC of the same length: from the same links and seed, the same trajectory
    lf, hmc = r.traces["LeapfrogLayers"], r.traces["HMC (same length)"]
    np.testing.assert_allclose(lf["plaquette"], hmc["plaquette"], atol=1e-5)
    assert r.lowest_plaquette == lf["plaquette"].mean(1).min()


def test_the_report_is_written_from_the_results(results):
    text = E.markdown(results)
    h, t = results.main
    exact = u1.exact_plaquette(2.0, 3)
    assert text.startswith("# LeapfrogLayers vs HMC — 2D U(1)\n\nSampler tiny: 3×3 lattice, β = 2, 4 chains, "
                           "2 thermalisation + 8 measured trajectories each, seed 3.")
    assert f"| ⟨cos x_P⟩ (exact {exact:.5f}) |" in text
    assert f"| acceptance | {h.acceptance[0]:.3f} ± {h.acceptance[1]:.3f} | {t.acceptance[0]:.3f} ± " in text
    assert "| trajectory: N_LF × ε | 2 × 0.2500 = 0.500 | 2 trained steps, Σε = 0.500 |" in text
    assert f"| HMC N_LF=1 | 0.250 | {results.hmc_tau[0]} |" in text
    assert f"| LeapfrogLayers | 0.500 | {results.trained_tau[0]} |" in text
    assert f"| τ_int(Q_Z) [traj.] | {h.tau['charge_int']} | {t.tau['charge_int']} |" in text
    assert f"trained trajectory: {results.lowest_plaquette:.4f}" in text
    assert text.endswith("| 0 | 1.500 | 0.900 | 0.1250 | 0.2500 | 0.800 | 0.0625 | -0.03125 |\n\n"
                         "![training](training.png)\n\n")


def test_sizes_come_from_the_configs_eval_table_then_the_overrides():
    cfg = {"eval": {**E.DEFAULTS, "trajectories": 50, "chains": None}}  # as a schema-filled config holds it
    s = E._settings(cfg, {"betas": [3.0], "thermalise": None})
    assert s["trajectories"] == 50 and s["betas"] == [3.0] and s["thermalise"] == E.DEFAULTS["thermalise"]
    assert E._settings({}, None) == E.DEFAULTS
    with pytest.raises(TfphysError, match="unknown key"):
        E._settings({"eval": {"trajectory": 5}})


def test_a_corrupt_model_is_one_error(tmp_path):
    configs.save({"model_name": "leapfrog", "eval": SIZES}, tmp_path / "config.toml")
    (tmp_path / "model.keras").write_bytes(b"\0" * 10)
    with pytest.raises(TfphysError, match="could not load a Keras model"):
        E.evaluate_run(tmp_path, {"eval": SIZES}, tmp_path / "eval")
