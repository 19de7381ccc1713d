"""Pythia 8 generation (``tfphys.darkshowers.pythia``): a handful of events per process.

Skipped when ``pythia8mc`` is not installed; CI installs it through the ``test`` extra. Each Pythia
initialisation takes ~2 s, so generators are shared per module and samples are tiny.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("pythia8mc", reason="Pythia 8 not installed: pip install 'tfphys[pythia]'")

from tfphys.cli import data_main  # noqa: E402
from tfphys.darkshowers import (
    detector,
    pythia,
    toy,  # noqa: E402
)
from tfphys.darkshowers import format as formats  # noqa: E402
from tfphys.errors import TfphysError  # noqa: E402

POINTS = {"qcd": None, "suep": 400.0, "svj": 2100.0}


@pytest.fixture(scope="module")
def generators():
    return {p: pythia.PythiaGenerator(p, m) for p, m in POINTS.items()}


@pytest.fixture(scope="module")
def samples(generators):
    return {p: g.chunk(3, np.random.SeedSequence(11), truth=True) for p, g in generators.items()}


# --- format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("process", toy.PROCESSES)
def test_events_have_the_toy_simulators_format(samples, process):
    events = {k: v for k, v in samples[process].items() if k in formats.DARKSHOWERS_DATASETS}
    reference = toy.simulate(process, 3, mass_gev=POINTS[process], seed=0)
    assert list(events) == list(reference)
    for key, value in reference.items():
        assert events[key].dtype == value.dtype and events[key].shape == value.shape, key
    assert (events["label"] == toy.LABELS[process]).all()
    np.testing.assert_array_equal(events["mass"], POINTS[process] or 0.0)
    images = events["images"]
    assert np.isfinite(images).all() and (images >= 0).all()
    assert (images[..., detector.TRACKER] > 0).any(axis=(1, 2)).all()  # every event has tracks
    assert ((images[..., 0] > 0).sum(axis=(1, 2)) <= events["n_tracks"]).all()


def test_written_file_matches_the_toy_file_layout(tmp_path, samples):
    paths = tmp_path / "pythia.h5", tmp_path / "toy.h5"
    formats.write_darkshowers(paths[0], [samples["svj"]], generator="pythia")
    formats.write_darkshowers(paths[1], [toy.simulate("svj", 3, mass_gev=2100.0, seed=0)], generator="toy")
    layouts = []
    for path in paths:
        with formats.open_darkshowers(path) as f:
            layouts.append({name: (ds.dtype, ds.shape, ds.chunks, ds.compression, dict(ds.attrs))
                            for name, ds in f.items()})
    assert layouts[0] == layouts[1]


# --- physics --------------------------------------------------------------------------------------


def test_particle_kinds_muons_and_neutrinos_leave_no_deposit(generators):
    gen = generators["svj"]
    ids = np.array([11, -13, 22, 211, -321, 2112, 130, 12, -16, 51, 53, 2212])
    kind, charge = gen._kinds(ids)
    np.testing.assert_array_equal(kind, [detector.ELECTRON, detector.MUON, detector.PHOTON,
                                         detector.CHARGED_HADRON, detector.CHARGED_HADRON,
                                         detector.NEUTRAL_HADRON, detector.NEUTRAL_HADRON,
                                         detector.INVISIBLE, detector.INVISIBLE, detector.INVISIBLE,
                                         detector.INVISIBLE, detector.CHARGED_HADRON])
    np.testing.assert_array_equal(charge, [-1, 1, 0, 1, -1, 0, 0, 0, 0, 0, 0, 1])


def _event_particles(gen, seed):
    gen.pythia.rndm.init(seed)
    assert gen.pythia.next()
    rows = gen._final_state(gen.pythia.event)
    ids, px, py, pz, e, _ = rows.T
    kind, charge = gen._kinds(ids.astype(np.int64))
    pt = np.hypot(px, py)
    keep = pt > 0
    eta = np.arcsinh(pz[keep] / pt[keep])
    return dict(pt=pt[keep], eta=eta, phi=np.arctan2(py, px)[keep], kind=kind[keep],
                charge=charge[keep], e=e[keep])


def test_detector_conserves_the_visible_energy_it_is_given(generators, monkeypatch):
    """Exact bookkeeping with resolutions, efficiencies, bending and thresholds switched off:
    tracker Σp_T = charged Σp_T, ECAL ΣE_T = Σ E/cosh η_cell of e/γ, HCAL ΣE_T = Σ E/cosh η_tower of
    hadrons — muons and neutrinos (present in the input) deposit nothing in the calorimeters."""
    svj, suep = _event_particles(generators["svj"], 5), _event_particles(generators["suep"], 5)
    p = {k: np.concatenate([svj[k], suep[k]]) for k in svj}  # one event: stand-ins and muons
    central = np.abs(p["eta"]) < 2.2  # away from the edge towers that stick out of the image
    p = {k: v[central] for k, v in p.items()}
    assert (p["kind"] == detector.INVISIBLE).any() and (p["kind"] == detector.MUON).any()
    monkeypatch.setattr(detector, "ECAL_ENERGY_MIN_GEV", 0.0)
    monkeypatch.setattr(detector, "HCAL_ENERGY_MIN_GEV", 0.0)
    images, n_tracks = detector.images_from_particles(
        np.zeros(p["pt"].size, np.int64), p["pt"], p["eta"], p["phi"], p["kind"], n_events=1,
        rng=np.random.default_rng(0), charge=p["charge"], energy_gev=p["e"], smear=False,
        apply_efficiency=False, propagate=False, ecal_significance_min=0, hcal_significance_min=0)
    charged = (p["charge"] != 0) & (p["kind"] != detector.INVISIBLE) & (p["pt"] > 0.1)
    np.testing.assert_allclose(images[0, ..., 0].sum(dtype=np.float64), p["pt"][charged].sum(), rtol=1e-5)
    assert n_tracks[0] == charged.sum()
    em = (p["kind"] == detector.ELECTRON) | (p["kind"] == detector.PHOTON)
    cell_eta = detector.pixel_eta_centre(detector.pixel_column(p["eta"][em]))
    np.testing.assert_allclose(images[0, ..., 1].sum(dtype=np.float64),
                               (p["e"][em] / np.cosh(cell_eta)).sum(), rtol=1e-5)
    hadron = (p["kind"] == detector.CHARGED_HADRON) | (p["kind"] == detector.NEUTRAL_HADRON)
    tower_eta = detector.tower_eta_centre(detector.tower_column(p["eta"][hadron]))
    np.testing.assert_allclose(images[0, ..., 2].sum(dtype=np.float64),
                               (p["e"][hadron] / np.cosh(tower_eta)).sum(), rtol=1e-5)


def test_tracker_keeps_the_cards_efficiency_of_the_charged_pt(generators):
    """With the card's efficiencies (0.60–0.95) and resolution the tracker keeps most of the p_T."""
    kept, given = 0.0, 0.0
    for seed in (1, 2):
        p = _event_particles(generators["qcd"], seed)
        images, _ = detector.images_from_particles(
            np.zeros(p["pt"].size, np.int64), p["pt"], p["eta"], p["phi"], p["kind"], n_events=1,
            rng=np.random.default_rng(seed), charge=p["charge"], energy_gev=p["e"])
        in_image = (p["charge"] != 0) & (p["pt"] > 0.1) & (np.abs(p["eta"]) < detector.ETA_MAX)
        kept += images[0, ..., 0].sum(dtype=np.float64)
        given += p["pt"][in_image].sum()
    assert 0.75 < kept / given < 0.97


def test_suep_hook_hands_back_mesons_that_carry_the_scalar(generators):
    gen = generators["suep"]
    gen.pythia.rndm.init(3)
    gen.hook.rng = np.random.default_rng(3)
    assert gen.pythia.next()
    process = gen.pythia.process
    scalar = [process[i] for i in range(process.size()) if process[i].id() == 25][-1]
    daughters = [process[i] for i in range(scalar.daughter1(), scalar.daughter2() + 1)]
    assert len(daughters) == gen.hook.n_mesons[-1] > 20  # ≈ 60 at 400 GeV (REFERENCE)
    assert {d.id() for d in daughters} == {pythia.SUEP_MESON_ID}
    p4 = np.array([[d.e(), d.px(), d.py(), d.pz()] for d in daughters]).sum(axis=0)
    np.testing.assert_allclose(p4, [scalar.e(), scalar.px(), scalar.py(), scalar.pz()], atol=1e-6 * 400)
    np.testing.assert_allclose([d.m() for d in daughters], 2.0)
    # Pythia decayed every meson: nothing of the hidden sector is left in the final state
    final = {q.id() for q in gen.pythia.event if q.isFinal()}
    assert not final & {pythia.SUEP_MESON_ID, pythia.DARK_PHOTON_ID}


def test_svj_settings_follow_the_benchmark():
    lines = pythia.settings("svj", 3100.0, {"r_inv": 0.4})
    assert "HiddenValley:setLambda = on" in lines
    assert f"HiddenValley:Lambda = {3.2 * 20**0.8:.6g}" in lines and "4900023:m0 = 3100" in lines
    for meson in (4900111, 4900211, 4900113, 4900213):
        channels = [line.split("=")[1].split() for line in lines if line.startswith(f"{meson}:")
                    and "Channel" in line]
        ratios = {tuple(c[3:]): float(c[1]) for c in channels}
        assert sum(ratios.values()) == pytest.approx(1.0, abs=1e-5)
        stand_in = "51" if meson % 10 == 1 else "53"  # pseudoscalars → 51, vectors → 53
        assert ratios[(stand_in, f"-{stand_in}")] == pytest.approx(0.4)


def test_svj_invisible_fraction_gives_missing_momentum(samples):
    """SVJ with r_inv = 0.3 has real missing p_T (dark stand-ins); QCD essentially none."""
    assert samples["svj"]["met_gev"].mean() > 20.0
    assert samples["qcd"]["met_gev"].mean() < samples["svj"]["met_gev"].mean() / 5


def test_pileup_deposits_in_the_calorimeters_but_leaves_no_tracks(samples):
    """Same seed, so the same hard QCD events: pile-up adds calorimeter energy, no tracks."""
    with_pileup = pythia.simulate("qcd", 3, seed=np.random.SeedSequence(11), truth=True, pileup_mu=10)
    np.testing.assert_array_equal(with_pileup["n_charged"], samples["qcd"]["n_charged"])
    assert (with_pileup["n_tracks"] <= with_pileup["n_charged"]).all()
    calo = [s["images"][..., 1:].sum(axis=(1, 2, 3), dtype=np.float64) for s in (samples["qcd"], with_pileup)]
    assert (calo[1] > calo[0]).all()


def test_suep_is_busier_than_qcd(samples):
    assert samples["suep"]["n_charged"].mean() > samples["qcd"]["n_charged"].mean()


# --- generation: seeds, workers, chunks, resuming -----------------------------------------------


def test_generate_resumes_an_interrupted_run_to_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(pythia, "CHUNK_EVENTS", 2)
    whole, cut = tmp_path / "whole.h5", tmp_path / "cut.h5"
    assert pythia.generate("qcd", 5, whole, seed=3, workers=2, progress=False) == 5
    assert pythia.generate("qcd", 5, cut, seed=3, progress=False) == 5
    with h5py.File(cut, "a") as f:  # an interruption during the third chunk's append
        f["images"].resize(3, axis=0)
        for name in ("label", "mass", "n_tracks"):
            f[name].resize(4, axis=0)
    assert data_main(["generate", "--generator", "pythia", "--process", "qcd", "--n", "5",
                      "--seed", "3", "--out", str(cut), "--resume"]) == 0
    with formats.open_darkshowers(whole) as a, formats.open_darkshowers(cut) as b:
        for name in formats.DARKSHOWERS_DATASETS:
            assert a[name][:].tobytes() == b[name][:].tobytes(), name


def test_generate_reproducible_per_seed_and_chunk(generators):
    gen = generators["qcd"]
    seeds = np.random.SeedSequence(8).spawn(2)
    first = gen.chunk(2, seeds[1])
    gen.chunk(2, seeds[0])  # another chunk in between does not matter
    again = gen.chunk(2, seeds[1])
    for key in first:
        assert first[key].tobytes() == again[key].tobytes()
    assert not np.array_equal(gen.chunk(2, seeds[0])["images"], first["images"])


# --- clear errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--process", "zprime"], "invalid choice: 'zprime'"),
    (["--process", "svj", "--mass", "2000"], "mass 2000 GeV is not a svj mass point"),
    (["--process", "suep", "--mass", "125", "--pythia", "Foo:bar = 1"], "Pythia rejected setting(s) ['Foo:bar = 1']"),
    (["--process", "qcd", "--pythia", "PhaseSpace:pTHatMin = abc"], "value not meaningful"),
    (["--process", "svj", "--mass", "2100", "--r-inv", "1.5"], "r_inv must be a fraction in [0, 1]"),
    (["--process", "suep", "--mass", "125", "--dark-photon-decay", "0.5,0.6,0.1"], "summing to 1"),
    (["--process", "suep", "--mass", "125", "--dark-photon-mass", "0.25", "--dark-photon-decay", "pions"],
     "cannot decay to 211 pairs"),
    (["--process", "qcd", "--workers", "0"], "--workers must be a positive number, got 0"),
])
def test_bad_requests_give_one_clear_error(tmp_path, capsys, extra, message):
    out = tmp_path / "x.h5"
    try:
        code = data_main(["generate", "--generator", "pythia", "--n", "2", "--out", str(out), *extra])
    except SystemExit as exit_info:  # argparse: usage error
        code = exit_info.code
    assert code in (1, 2)
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_pythia_options_are_refused_by_the_toy_generator(tmp_path, capsys):
    assert data_main(["generate", "--process", "svj", "--n", "2", "--r-inv", "0.5",
                      "--out", str(tmp_path / "x.h5")]) == 1
    assert "r_inv: only for --generator pythia" in capsys.readouterr().err


def test_resume_refuses_a_file_of_another_request(tmp_path, monkeypatch):
    monkeypatch.setattr(pythia, "CHUNK_EVENTS", 2)
    out = tmp_path / "x.h5"
    pythia.generate("qcd", 2, out, seed=1, progress=False)
    with pytest.raises(TfphysError, match="not an unfinished Pythia run of this request"):
        pythia.generate("qcd", 2, out, seed=2, resume=True, progress=False)


def test_workers_keep_one_generator_per_component_and_physics(monkeypatch):
    """A worker re-uses an initialised Pythia only for the same process, mass and physics."""
    made = []

    class Recorder:
        def __init__(self, process, mass, physics):
            made.append((process, mass, physics["r_inv"]))

        def chunk(self, size, seq):
            return size

    monkeypatch.setattr(pythia, "PythiaGenerator", Recorder)
    monkeypatch.setattr(pythia, "_WORKER", {})
    seq = np.random.SeedSequence(0)
    for r_inv in (0.3, 0.3, 0.6):
        pythia._run_chunk(("svj", 2100.0, 2, seq, pythia.physics_config({"r_inv": r_inv})))
    pythia._run_chunk(("svj", 3100.0, 2, seq, pythia.physics_config({"r_inv": 0.6})))
    assert made == [("svj", 2100.0, 0.3), ("svj", 2100.0, 0.6), ("svj", 3100.0, 0.6)]


def test_plan_seeds_chunks_and_cycles_signal_masses():
    chunks = pythia.plan("suep", None, 130, seed=4, chunk_events=64)
    assert [c[2] for c in chunks] == [64, 64, 2]
    assert [c[1] for c in chunks] == [125.0, 200.0, 300.0]
    assert len({c[3].generate_state(1)[0] for c in chunks}) == 3  # independent streams
    everything = pythia.plan("all", None, 10, seed=4)
    assert [(c[0], c[1]) for c in everything] == [("qcd", None)] + [
        (p, m) for p in ("suep", "svj") for m in pythia.MASSES_GEV[p]]
