"""Pythia 8 generation (``tfphys.darkshowers.pythia``): a handful of events per process.

Skipped when ``pythia8mc`` is not installed; CI installs it through the ``test`` extra. Each Pythia
initialisation takes ~2 s, so generators are shared per module and samples are tiny.
"""

from __future__ import annotations

import json

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
ONE_QCD_SAMPLE = {"pt_hat_min_gev": 100.0}  # one Pythia instead of the default's 13 slices (~2 s each)
TWO_SLICES = ["--pt-hat-slices", "100,300"]  # a sliced QCD request that starts in ~4 s


@pytest.fixture(scope="module")
def generators():
    return {p: pythia.PythiaGenerator(p, m, ONE_QCD_SAMPLE if p == "qcd" else None) for p, m in POINTS.items()}


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
    with_pileup = pythia.simulate("qcd", 3, seed=np.random.SeedSequence(11), truth=True, pileup_mu=10,
                                  **ONE_QCD_SAMPLE)
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
    slices = {"pt_hat_slices_gev": (100.0, 300.0)}
    assert pythia.generate("qcd", 5, whole, seed=3, workers=2, progress=False, **slices) == 5
    assert pythia.generate("qcd", 5, cut, seed=3, progress=False, **slices) == 5
    with h5py.File(cut, "a") as f:  # an interruption during the third chunk's append
        f["images"].resize(3, axis=0)
        for name in ("label", "mass", "n_tracks"):
            f[name].resize(4, axis=0)
    assert data_main(["generate", "--generator", "pythia", "--process", "qcd", "--n", "5",
                      "--seed", "3", "--out", str(cut), "--resume", *TWO_SLICES]) == 0
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
    pythia.generate("qcd", 2, out, seed=1, progress=False, **ONE_QCD_SAMPLE)
    with pytest.raises(TfphysError, match="not an unfinished Pythia run of this request"):
        pythia.generate("qcd", 2, out, seed=2, resume=True, progress=False, **ONE_QCD_SAMPLE)


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


# --- QCD p̂_T slices and the preselection ----------------------------------------------------------

HARD_PROCESS_ONLY = ("PartonLevel:all = off", "HadronLevel:all = off")  # ~10 µs per event


def _pt_hats(gen, n, seed):
    gen.reseed(np.random.SeedSequence(seed))
    slices, pt_hat = [], []
    for _ in range(n):
        k, _, _ = gen.next_event()
        slices.append(k)
        pt_hat.append(gen.pythias[k].infoPython().pTHat())
    return np.array(slices), np.array(pt_hat)


def test_xsec_weighted_slices_reproduce_the_unsliced_spectrum():
    """Three p̂_T slices mixed by their σ give the p̂_T spectrum of one sample above the lowest edge:
    the slice σ add up to the unsliced σ, each slice's events lie inside it, the slice counts follow
    σ_i/Σσ, and the combined p̂_T histogram equals the σ-weighted sum of the slices' histograms —
    here the unsliced sample's histogram, within its statistical errors."""
    edges = (100.0, 150.0, 250.0)
    sliced_cfg = {"pt_hat_slices_gev": edges, "slice_weighting": "xsec", "pythia_settings": HARD_PROCESS_ONLY}
    sigmas = pythia.slice_cross_sections(sliced_cfg, pilot_events=5000)
    (whole,) = pythia.slice_cross_sections({"pt_hat_min_gev": 100.0, "pythia_settings": HARD_PROCESS_ONLY},
                                           pilot_events=5000)
    assert sum(sigmas) == pytest.approx(whole, rel=0.02)
    assert sigmas[0] > sigmas[1] > sigmas[2] > 0  # a falling spectrum
    sliced = pythia.PythiaGenerator("qcd", None, sliced_cfg, cross_sections=sigmas)
    np.testing.assert_allclose(sliced.slice_fractions, np.array(sigmas) / sum(sigmas))
    n = 4000
    k, pt_hat = _pt_hats(sliced, n, seed=1)
    for i, (lo, hi) in enumerate(zip(edges, (*edges[1:], np.inf))):
        assert ((pt_hat[k == i] >= lo) & (pt_hat[k == i] < hi)).all()
    expected = n * sliced.slice_fractions
    assert (((np.bincount(k, minlength=3) - expected) ** 2 / expected).sum()) < 13.8  # χ², 2 dof, p = 0.001
    unsliced = pythia.PythiaGenerator("qcd", None, {"pt_hat_min_gev": 100.0, "pythia_settings": HARD_PROCESS_ONLY})
    _, reference = _pt_hats(unsliced, n, seed=2)
    bins = np.array([100, 110, 125, 150, 180, 250, 350, 13000.0])
    ours, ref = np.histogram(pt_hat, bins)[0], np.histogram(reference, bins)[0]
    chi2 = ((ours - ref) ** 2 / (ours + ref)).sum()
    assert chi2 < 24.3  # 7 dof, p = 0.001
    # the same histogram as the σ-weighted sum of the slices' own histograms
    per_slice = [np.histogram(pt_hat[k == i], bins)[0] / max((k == i).sum(), 1) for i in range(3)]
    weighted = n * sum(f * h for f, h in zip(sliced.slice_fractions, per_slice))
    assert ((ours - weighted) ** 2 / np.maximum(weighted, 1)).sum() < 24.3


def test_equal_weighting_draws_every_slice_equally():
    gen = pythia.PythiaGenerator("qcd", None, {"pt_hat_slices_gev": (100.0, 400.0), "slice_weighting": "equal",
                                               "pythia_settings": HARD_PROCESS_ONLY})
    assert gen.cross_sections is None
    k, pt_hat = _pt_hats(gen, 2000, seed=3)
    assert abs((k == 1).mean() - 0.5) < 0.05 and (pt_hat[k == 1] >= 400).all() and (pt_hat[k == 0] < 400).all()


def test_preselection_keeps_exactly_the_events_above_threshold(generators, monkeypatch):
    """With the same seed, the preselected stream is the unselected one with the events below the
    H_T threshold removed — nothing else changes (the detector aside, which sees other events)."""
    gen, seq = generators["qcd"], np.random.SeedSequence(21)
    everything = gen.chunk(10, seq, truth=True)
    ht = everything["l1_ht_gev"]
    threshold = float(np.sort(ht)[4])  # between the 5th and 6th largest H_T... keeps 6 of 10
    monkeypatch.setitem(gen.cfg, "l1_ht_min_gev", threshold)
    kept = gen.chunk(6, seq, truth=True)
    above = ht >= threshold
    assert above.sum() == 6 and (kept["l1_ht_gev"] >= threshold).all()
    np.testing.assert_array_equal(kept["l1_ht_gev"], ht[above])
    np.testing.assert_array_equal(kept["n_charged"], everything["n_charged"][above])
    np.testing.assert_array_equal(kept["pt_hat_gev"], everything["pt_hat_gev"][above])
    monkeypatch.setitem(gen.cfg, "l1_ht_min_gev", 0.0)
    monkeypatch.setitem(gen.cfg, "l1_jet_min_gev", float(np.median(everything["l1_jet_gev"])))
    assert (gen.chunk(3, seq, truth=True)["l1_jet_gev"] >= gen.cfg["l1_jet_min_gev"]).all()


def test_l1_quantities_are_the_cone_jets_of_the_visible_final_state(generators):
    gen = generators["svj"]
    gen.pythia.rndm.init(4)
    assert gen.pythia.next()
    ht, jet = gen.l1(gen.pythia.event)
    cells = pythia._pythia8mc().CellJet(pythia.L1_ETA_MAX, *pythia.L1_CELLS, 2)
    cells.analyze(gen.pythia.event, 10.0, pythia.L1_CONE_R, pythia.L1_SEED_GEV)
    et = [cells.eT(j) for j in range(cells.size())]
    assert jet == pytest.approx(max(et)) and ht == pytest.approx(sum(e for e in et if e > 30.0))
    assert 0 < jet <= ht < 4100.0  # a 2.1 TeV Z' with invisible dark mesons: H_T below √ŝ


def test_sliced_default_file_reads_everywhere(tmp_path):
    """A file of the sliced QCD (default weighting, preselection on), written the way a user does
    (a fresh process), reads with the format reader and feeds the training pipeline."""
    import subprocess
    import sys

    out = tmp_path / "qcd.h5"
    from pathlib import Path

    command = Path(sys.executable).with_name("tfphys-data")  # the installed script, as a user runs it
    run = subprocess.run([str(command), "darkshowers", "--generator", "pythia",
                          "--process", "qcd", "--n", "4", "--seed", "2", "--workers", "1", "--out", str(out),
                          *TWO_SLICES, "--l1-ht-min", "150"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with formats.open_darkshowers(out) as f:
        assert f["images"].shape == (4, 360, 286, 3) and (f["label"][:] == 0).all()
        request = json.loads(f.attrs["request"])
    assert request["physics"]["pt_hat_slices_gev"] == [100.0, 300.0]
    assert request["physics"]["slice_weighting"] == pythia.DEFAULT_PHYSICS["slice_weighting"]
    from tfphys.darkshowers import pipeline

    split = pipeline.split_events(out, val_fraction=0.25)
    masks = pipeline.load_masks(out, np.sort(split.train))
    assert masks.shape[1:] == (72, 58, 1) and masks.max() == 1.0


@pytest.mark.parametrize("extra, message", [
    (["--pt-hat-slices", "100,50"], "pt_hat_slices_gev must be positive and increasing"),
    (["--pt-hat-slices", "100,x"], "pt_hat_slices_gev must be increasing p̂_T edges"),
    (["--l1-ht-min", "-5"], "l1_ht_min_gev must be ≥ 0"),
    (["--slice-weighting", "lumi"], "invalid choice: 'lumi'"),
    (["--pythia", "PhaseSpace:pTHatMax = -"], "Pythia rejected setting(s)"),
])
def test_bad_slice_or_preselection_settings_are_one_line_and_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "x.h5"
    try:
        code = data_main(["generate", "--generator", "pythia", "--process", "qcd", "--n", "2",
                          "--out", str(out), *extra])
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (1, 2) and message in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())
