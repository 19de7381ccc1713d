"""The LeapfrogLayers evaluation: runs extended to 50 τ_int or a cap, bounds never turned into ratios,
compute → LeapfrogResults, then the report written from it."""

import keras
import numpy as np
import pytest

from tfphys import config as configs
from tfphys.errors import TfphysError
from tfphys.leapfrog import evaluate as E
from tfphys.leapfrog import u1
from tfphys.leapfrog.autocorr import AutocorrTime
from tfphys.leapfrog.hmc import Chains
from tfphys.leapfrog.sampler import build_leapfrog

# the target β only (each sampler compiles its own graphs: seconds), one HMC scan point
SIZES = {"thermalise": 2, "trajectories": 8, "max_trajectories": 40, "max_cpu_s": 30.0, "betas": [],
         "scan_trajectories": 6, "scan_thermalise": 1, "lengths": [1], "hmc_step_sizes": [0.25], "chains": 4}
HISTORY = [{"epoch": 0.0, "beta": 1.5, "acceptance": 0.9, "dq_int": 0.125, "dq_real_sq": 0.25,
            "val_acceptance": 0.8, "val_dq_int": 0.0625, "val_loss": -0.03125, "train_cpu_s": 12.5}]


@pytest.fixture(scope="module")
def untrained():
    """An untrained sampler: the heating start with ε_k = 0.25 (scalars only)."""
    keras.utils.set_random_seed(0)
    return build_leapfrog(lattice_size=3, n_leapfrog=2, n_chains=4, beta=2.0, step_size=0.25, heating=0.05)


@pytest.fixture(scope="module")
def results(untrained):
    return E.compute(untrained, settings=SIZES, seed=3, progress=False, source="tiny", history=HISTORY)


def _fake_chains(charges, cpu_s=1.0):
    q = np.asarray(charges, float)
    return Chains(q, q, np.ones_like(q), np.ones_like(q), cpu_s, cpu_s, np.zeros((q.shape[1], 2, 2, 2)))


def test_runs_are_extended_until_50_tau_long_or_capped():
    """An AR(1) charge-like series of known τ: the run grows until ≥ 50 τ, and stops at the cap otherwise."""
    rng = np.random.default_rng(0)
    phi = 0.9  # τ = 19
    state = {"z": rng.normal(size=8)}
    calls = []

    def run(x, n, seed):
        calls.append(n)
        out = np.empty((n, 8))
        for t in range(n):
            state["z"] = phi * state["z"] + rng.normal(size=8) * np.sqrt(1 - phi ** 2)
            out[t] = state["z"]
        return _fake_chains(np.round(out * 2), cpu_s=1e-3 * n)

    chains = E.run_until_reliable(run, None, min_trajectories=100, max_trajectories=10_000, max_cpu_s=100, seed=0)
    r = E.SamplerResult("ar1", 1.0, 1, 1.0, chains, 4)
    assert len(calls) > 1 and chains.n_trajectories >= 50 * r.tau["charge_int"].tau and r.reliable
    assert r.tau_text().count("±") == 1 and "≳" not in r.tau_text()
    calls.clear()
    capped = E.run_until_reliable(run, None, min_trajectories=100, max_trajectories=400, max_cpu_s=100, seed=0)
    assert capped.n_trajectories == 400 and not E.SamplerResult("c", 1.0, 1, 1.0, capped, 4).reliable


def _result(tau, reliable, cpu_s=1.0, n=1000, chains=10):
    r = E.SamplerResult.__new__(E.SamplerResult)
    r.name, r.chains = "x", _fake_chains(np.zeros((n, chains)), cpu_s)
    r.tau = {"charge_int": AutocorrTime(tau, 0.1 * tau, n, chains, reliable)}
    return r


def test_no_ratio_is_formed_from_a_bound():
    trained, hmc_bound, hmc = _result(10.0, True), _result(100.0, False), _result(30.0, True)
    text, ok = E.goal_text(trained, hmc, "tau", 0.25)
    assert text.startswith("0.333") and ok is False
    text, ok = E.goal_text(trained, hmc_bound, "tau", 0.25)  # τ_HMC ≥ 100 ≥ 4 × 10: decided by the bound
    assert ok is True and "no ratio" in text and "0.1" not in text
    text, ok = E.goal_text(trained, _result(20.0, False), "tau", 0.25)  # τ_HMC ≥ 20 < 40: undecided
    assert ok is None and "undecided" in text and "0.5" not in text
    assert hmc_bound.ess_text().startswith("≤ ") and hmc_bound.tau_text() == "≳ 100"
    text, ok = E.goal_text(trained, hmc_bound, "ess", 3.0)  # ESS/CPU-s 1000 vs ≤ 100
    assert ok is True and "no ratio" in text
    assert E.break_even(50.0, trained, hmc) == f"{50.0 / (1 / hmc.ess_per_cpu_s() - 1 / trained.ess_per_cpu_s()):.3g}"
    assert E.break_even(50.0, trained, hmc_bound).startswith("≲ ")
    assert E.break_even(50.0, hmc, trained).startswith("never")


def test_results_hold_every_sampler_at_the_target_beta(results, untrained):
    r = results
    assert (r.beta, r.lattice_size, r.chains, r.n_leapfrog) == (2.0, 3, 4, 2)
    assert r.trajectory_length == pytest.approx(0.5) and np.allclose(r.step_sizes, 0.25)
    assert list(r.main) == ["LeapfrogLayers", "untrained start", "HMC equal length", "HMC ε=0.25 N=1"]
    assert r.betas == [] and r.scan == {} and r.train_cpu_s == 12.5
    for res in r.main.values():
        assert 8 <= res.chains.n_trajectories <= 40 and res.chains.charge_int.shape[1] == 4
        assert res.reliable or res.chains.n_trajectories == 40 or res.chains.cpu_s >= 30
    assert r.settings == {**E.DEFAULTS, **SIZES}
    np.testing.assert_allclose(r.heating[0, 0], 0.05) and np.testing.assert_allclose(r.heating[1, 1], -0.05)
    # untrained: the trained sampler and its start run the same trajectory from the same links and seed
    lf, start = r.traces["LeapfrogLayers"], r.traces["untrained start"]
    np.testing.assert_allclose(lf["plaquette"], start["plaquette"], atol=1e-6)
    assert r.lowest_plaquette == lf["plaquette"].mean(1).min()
    assert r.best_hmc.name in ("HMC equal length", "HMC ε=0.25 N=1")


def test_the_report_is_written_from_the_results(results):
    text = E.markdown(results)
    t = results.main["LeapfrogLayers"]
    exact = u1.exact_plaquette(2.0, 3)
    assert text.startswith("# LeapfrogLayers vs HMC — 2D U(1)\n\nSampler tiny: 3×3 lattice, β = 2, 4 chains, "
                           "2 thermalisation + 8 measured trajectories each, seed 3.")
    assert f"| ⟨cos x_P⟩ (exact {exact:.5f}) |" in text
    assert f"| ⟨Q_Z²⟩ (exact {u1.exact_charge_squared(2.0, 3):.4f}) |" in text
    assert f"| τ_int(Q_Z) [traj.] | {t.tau_text()} |" in text
    assert "| ESS(Q_Z)/CPU-s trained / untrained start ≥ 1.3 |" in text
    assert "Training CPU time: 12 s." in text
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
