"""Physics pins of the toy dark-shower simulator (``tfphys.darkshowers.toy``) and its CMS-like
detector (``detector``). Tiny samples only; no timing tests."""

from __future__ import annotations

import numpy as np
import pytest

from tfphys.darkshowers import detector, toy


def _image(particles, *, n_events=1, seed=0, **kwargs):
    """Run the detector on hand-made particles: a list of (event, pt, eta, phi, kind)."""
    event, pt, eta, phi, kind = (np.array(column) for column in zip(*particles))
    return detector.images_from_particles(event, pt, eta, phi, kind, n_events=n_events,
                                          rng=np.random.default_rng(seed), **kwargs)


def _blocks(channel):
    """(…, 360, 286) → (…, 72, 58, 5, 5) blocks of the 'SAME'-padded 5×5 down-sampling (NaN padding)."""
    padded = np.pad(channel.astype(np.float64), [(0, 0)] * (channel.ndim - 1) + [(2, 2)],
                    constant_values=np.nan)
    return padded.reshape(*channel.shape[:-2], 72, 5, 58, 5).swapaxes(-3, -2)


# --- simulate(): API contract -------------------------------------------------------------------


@pytest.mark.parametrize("process", toy.PROCESSES)
def test_shapes_dtypes_labels_masses(process):
    out = toy.simulate(process, 3, seed=1)
    assert list(out) == ["images", "label", "mass", "n_tracks"]
    assert out["images"].shape == (3, 360, 286, 3) and out["images"].dtype == np.float32
    assert out["label"].dtype == np.int8 and (out["label"] == toy.LABELS[process]).all()
    assert out["mass"].dtype == np.float32 and np.isin(out["mass"], toy.MASSES_GEV[process]).all()
    assert out["n_tracks"].shape == (3,) and out["n_tracks"].dtype == np.int32
    assert np.isfinite(out["images"]).all() and (out["images"] >= 0).all()
    # every non-empty tracker pixel holds at least one track (n_tracks also counts 2.488 < |η| ≤ 2.5)
    assert ((out["images"][..., 0] > 0).sum(axis=(1, 2)) <= out["n_tracks"]).all()


def test_fixed_mass_and_empty_chunk():
    out = toy.simulate("svj", 2, mass_gev=3100, seed=0)
    np.testing.assert_array_equal(out["mass"], [3100.0, 3100.0])
    empty = toy.simulate("suep", 0, seed=0)
    assert list(empty) == ["images", "label", "mass", "n_tracks"]
    assert empty["images"].shape == (0, 360, 286, 3) and empty["images"].dtype == np.float32
    assert empty["label"].shape == empty["mass"].shape == empty["n_tracks"].shape == (0,)
    assert empty["n_tracks"].dtype == np.int32


def test_same_seed_same_bytes_and_seed_sequence_untouched():
    a = toy.simulate("suep", 2, seed=7)
    b = toy.simulate("suep", 2, seed=7)
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert toy.simulate("suep", 2, seed=8)["images"].tobytes() != a["images"].tobytes()
    seq = np.random.SeedSequence(5).spawn(3)[1]
    first = toy.simulate("qcd", 2, seed=seq)["images"]
    assert toy.simulate("qcd", 2, seed=seq)["images"].tobytes() == first.tobytes()


@pytest.mark.parametrize("args, match", [
    (("zprime", 1), "zprime"),
    (("suep", 1, 150.0), r"150.*125\.0"),
    (("svj", 1, 2.1), r"2\.1.*2100"),
    (("qcd", 1, 125.0), "125"),
])
def test_bad_process_or_mass_names_the_value(args, match):
    process, n, *mass = args
    with pytest.raises(ValueError, match=match):
        toy.simulate(process, n, mass_gev=mass[0] if mass else None)


def test_unknown_physics_setting_is_refused():
    with pytest.raises(ValueError, match="r_invisible"):
        toy.simulate("svj", 1, r_invisible=0.3)


# --- detector -----------------------------------------------------------------------------------


def test_muons_only_in_tracker_invisibles_nowhere():
    images, n_tracks = _image([(0, 50.0, 0.3, 1.0, detector.MUON),
                               (1, 50.0, 0.3, 1.0, detector.INVISIBLE)], n_events=2)
    muon, invisible = images
    assert muon[..., 0].sum() > 0 and muon[..., 1:].sum() == 0
    assert invisible.sum() == 0
    assert n_tracks[1] == 0


def test_species_go_to_their_channels():
    images, n_tracks = _image([(0, 50.0, 0.5, 0.0, detector.PHOTON),
                               (1, 50.0, 0.5, 0.0, detector.NEUTRAL_HADRON),
                               (2, 50.0, 0.5, 0.0, detector.CHARGED_HADRON),
                               (3, 50.0, 0.5, 0.0, detector.ELECTRON)], n_events=4,
                              apply_efficiency=False)
    deposits = images.sum(axis=(1, 2)) > 0  # (event, channel)
    np.testing.assert_array_equal(deposits, [[0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(n_tracks, [0, 0, 1, 1])


def test_unsmeared_deposits_conserve_et_at_cell_centres():
    eta_pixel = float(detector.pixel_eta_centre(100))
    eta_tower = float(detector.tower_eta_centre(20))
    images, _ = _image([(0, 40.0, eta_pixel, 0.3, detector.PHOTON),
                        (0, 60.0, eta_tower, -2.0, detector.NEUTRAL_HADRON),
                        (1, 30.0, -1.2, 2.5, detector.CHARGED_HADRON)], n_events=2, smear=False,
                       apply_efficiency=False)
    np.testing.assert_allclose(images[1, ..., 0].sum(), 30.0, rtol=1e-6)
    assert images[0, ..., 0].sum() == 0
    np.testing.assert_allclose(images[0, ..., 1].sum(), 40.0, rtol=1e-6)
    np.testing.assert_allclose(images[0, ..., 2].sum(), 60.0, rtol=1e-5)
    assert images[0, detector.pixel_row(0.3), 100, 1] == pytest.approx(40.0)


def test_smearing_preserves_mean_energy():
    # 120 photons / neutral hadrons on distinct cells of one event: log-normal smearing keeps the mean.
    rows = np.arange(120) * 3
    eta = detector.pixel_eta_centre(143 + (rows % 7))
    tower_eta = detector.tower_eta_centre(25 + np.arange(120) // 72)
    tower_phi = -np.pi + (np.arange(120) % 72 * 5 + 2.5) * detector.PHI_PIXEL
    photons = [(0, 50.0, e, -np.pi + (r + 0.5) * detector.PHI_PIXEL, detector.PHOTON)
               for r, e in zip(rows, eta)]
    hadrons = [(0, 80.0, e, p, detector.NEUTRAL_HADRON) for e, p in zip(tower_eta, tower_phi)]
    images, _ = _image(photons + hadrons, seed=3)
    assert (images[0, ..., 1] > 0).sum() == 120
    np.testing.assert_allclose(images[0, ..., 1].sum() / (120 * 50.0), 1.0, atol=0.01)
    np.testing.assert_allclose(images[0, ..., 2].sum() / (120 * 80.0), 1.0, atol=0.05)


def test_hcal_tower_is_25_pixels_of_a_25th_aligned_with_downsampling():
    eta = float(detector.tower_eta_centre(20))
    images, _ = _image([(0, 50.0, eta, 0.01, detector.NEUTRAL_HADRON),
                        (0, 50.0, -2.50, 0.01, detector.NEUTRAL_HADRON)],  # edge tower, column 0
                       smear=False)
    hcal = images[0, ..., 2]
    row0 = 5 * (int(detector.pixel_row(0.01)) // 5)
    block = hcal[row0:row0 + 5, 5 * 20 - 2:5 * 20 + 3]
    np.testing.assert_allclose(block, 50.0 / 25, rtol=1e-6)
    edge = hcal[row0:row0 + 5, 0:3]  # only 15 of the edge tower's 25 pixels are in the image
    np.testing.assert_allclose(edge, 50.0 * np.cosh(2.5) / np.cosh(detector.tower_eta_centre(0)) / 25,
                               rtol=1e-6)
    assert (hcal > 0).sum() == 25 + 15
    sums = np.nansum(_blocks(hcal), axis=(-2, -1))
    assert sums[row0 // 5, 20] == pytest.approx(50.0, rel=1e-5)


def test_simulated_hcal_is_constant_on_downsampling_blocks():
    hcal = toy.simulate("qcd", 2, seed=4)["images"][..., 2]
    blocks = _blocks(hcal)
    assert hcal.sum() > 0
    np.testing.assert_array_equal(np.nanmax(blocks, axis=(-2, -1)), np.nanmin(blocks, axis=(-2, -1)))


def test_tracker_acceptance_and_efficiency():
    images, n_tracks = _image([(0, 5.0, 2.6, 0.0, detector.CHARGED_HADRON),  # |η| > 2.5: no track
                               (1, 5.0, 2.495, 0.0, detector.CHARGED_HADRON),  # tracked, off-image
                               (2, 0.09, 0.0, 0.0, detector.CHARGED_HADRON)],  # p_T ≤ 0.1 GeV
                              n_events=3, apply_efficiency=False)
    np.testing.assert_array_equal(n_tracks, [0, 1, 0])
    assert images[..., 0].sum() == 0
    rng = np.random.default_rng(0)
    k = 4000
    eta = rng.uniform(-1.4, 1.4, k)
    _, n_tracks = detector.images_from_particles(
        np.zeros(k, int), np.full(k, 5.0), eta, rng.uniform(-np.pi, np.pi, k),
        np.full(k, detector.CHARGED_HADRON), n_events=1, rng=rng)
    assert n_tracks[0] / k == pytest.approx(0.95, abs=0.015)  # card: 95 % for p_T > 1 GeV, |η| ≤ 1.5


def test_charged_particles_bend_in_the_field():
    eta, phi = detector.propagate_to_calorimeter(np.array([10.0, 0.5, 10.0]), np.zeros(3), np.zeros(3),
                                                 np.array([1.0, 1.0, 0.0]))
    # helix to R = 1.29 m in 3.8 T: Δφ = −asin(0.3·B·R / 2p_T); a 0.5 GeV track at η = 0 never arrives
    assert phi[0] == pytest.approx(-np.arcsin(0.299792458 * 3.8 * 1.29 / 20.0))
    assert np.isnan(eta[1]) and phi[2] == 0.0 and eta[0] == pytest.approx(0.0)


# --- SUEP ---------------------------------------------------------------------------------------


def test_suep_mesons_share_exactly_the_scalar_mass():
    masses = np.array([125.0, 400.0, 1000.0]).repeat(100)
    event, p4 = toy.suep_meson_momenta(np.random.default_rng(1), masses)
    energy = np.bincount(event, weights=p4[:, 0])
    np.testing.assert_allclose(energy, masses, rtol=1e-12)
    for i in (1, 2, 3):
        np.testing.assert_allclose(np.bincount(event, weights=p4[:, i]), 0.0, atol=1e-9 * 1000)
    np.testing.assert_allclose(p4[:, 0] ** 2 - (p4[:, 1:] ** 2).sum(axis=1), 4.0, rtol=1e-9)
    multiplicity = np.bincount(event).reshape(3, 100).mean(axis=1)
    np.testing.assert_allclose(multiplicity, [19, 60, 149], rtol=0.1)  # REFERENCE, m_φ = T = 2 GeV


def test_dark_photon_decays_conserve_four_momentum():
    rng = np.random.default_rng(2)
    scalar = np.array([[300.0, 40.0, -10.0, 150.0]])
    scalar[0, 0] = np.sqrt(200.0**2 + (scalar[0, 1:] ** 2).sum())  # a 200 GeV scalar in flight
    event, rest = toy.suep_meson_momenta(rng, np.array([200.0]))
    mesons = toy.boost(rest, scalar[event], 200.0)
    np.testing.assert_allclose(mesons.sum(axis=0), scalar[0], rtol=1e-10)
    meson, p4, kind = toy.decay_dark_mesons(rng, mesons)
    assert p4.shape == (4 * len(mesons), 4)
    for i in range(4):
        np.testing.assert_allclose(np.bincount(meson, weights=p4[:, i]), mesons[:, i], rtol=1e-9,
                                   atol=1e-9)
    assert set(np.unique(kind)) <= {detector.ELECTRON, detector.MUON, detector.CHARGED_HADRON}
    masses = np.sqrt(np.maximum(p4[:, 0] ** 2 - (p4[:, 1:] ** 2).sum(axis=1), 0.0))
    np.testing.assert_allclose(masses[kind == detector.MUON], toy.MUON_MASS_GEV, rtol=1e-4)


def test_suep_track_multiplicity_grows_with_mass():
    means = [toy.simulate("suep", 6, mass_gev=m, seed=3)["n_tracks"].mean() for m in (125, 400, 1000)]
    assert means[0] < means[1] < means[2]
    assert means[2] > 2 * means[0]


# --- SVJ and QCD --------------------------------------------------------------------------------


def test_svj_jets_are_less_visible_than_qcd_jets_of_the_same_energy():
    rng = np.random.default_rng(4)
    n, pt = 400, 500.0
    phi = rng.uniform(-np.pi, np.pi, n)
    quark = np.stack([np.full(n, pt), pt * np.cos(phi), pt * np.sin(phi), np.zeros(n)], axis=1)
    index, p4, kind = toy.dark_showers(rng, quark, np.full(n, pt), r_inv=0.3)
    visible = np.bincount(index, weights=p4[:, 0] * (kind != detector.INVISIBLE), minlength=n)
    total = np.bincount(index, weights=p4[:, 0], minlength=n)
    assert visible.sum() / total.sum() == pytest.approx(0.7, abs=0.05)
    jets = toy.fragment_jets(rng, np.full(n, pt), np.zeros(n), phi)
    np.testing.assert_allclose(np.bincount(jets["jet"], weights=jets["pt_gev"]), pt, rtol=1e-9)
    assert not np.isin(jets["kind"], [detector.INVISIBLE]).any()
    # at detector level too: calorimeter E_T of 32 SVJ vs 32 QCD jets
    k = 32
    svj_pt, svj_eta, svj_phi = toy.pt_eta_phi(p4)
    keep = index < k
    svj, _ = detector.images_from_particles(index[keep], svj_pt[keep], svj_eta[keep], svj_phi[keep],
                                            kind[keep], n_events=k, rng=rng, energy_gev=p4[keep, 0])
    keep = jets["jet"] < k
    qcd, _ = detector.images_from_particles(jets["jet"][keep], jets["pt_gev"][keep], jets["eta"][keep],
                                            jets["phi"][keep], jets["kind"][keep], n_events=k, rng=rng)
    assert svj[..., 1:].sum() < 0.85 * qcd[..., 1:].sum()


def test_r_inv_limits():
    rng = np.random.default_rng(5)
    quark = np.array([[1000.0, 1000.0, 0.0, 0.0]])
    _, _, kind = toy.dark_showers(rng, quark, np.array([1000.0]), r_inv=0.0)
    assert not (kind == detector.INVISIBLE).any()
    _, _, kind = toy.dark_showers(rng, quark, np.array([1000.0]), r_inv=1.0)
    assert (kind == detector.INVISIBLE).all()


def test_qcd_track_multiplicity_is_plausible():
    out = toy.simulate("qcd", 16, seed=6, n_tracks_pt_min_gev=1.0)
    # Pythia 8 QCD with pTHatMin = 100 GeV: ≈ 46 tracks with p_T > 1 GeV in |η| < 2.5
    assert 32 < out["n_tracks"].mean() < 60
    assert (toy.simulate("qcd", 16, seed=6)["n_tracks"] >= out["n_tracks"]).all()
