"""Toy simulator of the CoDAE dark-shower dataset: QCD multijet, SUEP and SVJ events (paper §1.1, §3).

A fast, seeded, pure-numpy stand-in for Pythia 8 + Delphes. :func:`simulate` draws particle-level
events here and images them with the CMS-like :mod:`.detector` (which a Pythia-based generator
will reuse). It is *physics-faithful in spirit*: the features the paper's models see — many soft
isotropic tracks for SUEP, wide semi-visible jets for SVJ, collimated hard jets plus underlying event
for QCD — come from simple, documented laws, not from a parton shower. Energies in GeV, angles in
radians, √s = 13 TeV.

Processes (labels and mediator masses of paper §3):

``qcd`` (label 0, mass 0) — multijet background.
    * Hard scatter: p̂_T ≥ ``pt_hat_min_gev`` (100) from dσ/dp̂_T ∝ p̂_T^−``pt_hat_power`` (5),
      capped at 3 TeV. Two leading jets of p_T = p̂_T·e^{0.08 N(0,1)} each, back-to-back in φ up to
      a N(0, 0.1) acoplanarity, at η = y_boost ± y* with y_boost ~ N(0, 0.9), y* ~ N(0, 0.8).
    * Extra hard jets: Poisson(``extra_jets_mean`` = 1.0), p_T from the same power law above
      ``extra_jet_pt_min_gev`` (25) but below the subleading jet, η ~ N(0, 1.8), φ uniform.
    * Each jet fragments with :func:`fragment_jets`, plus the :func:`underlying_event`.
``suep`` (label 1, m_H ∈ 125…1000) — soft unclustered energy patterns from gg → H → dark mesons.
    * The scalar has p_T ~ Gamma(2, ``recoil_pt_mean_gev``/2) (mean 30 GeV, ISR-like), rapidity
      y ~ N(0, 0.45·ln(√s/M)) clipped to |y| ≤ ln(√s/M), balanced by one ISR jet opposite in φ.
    * H → dark mesons (m_φ = ``meson_mass_gev`` = 2, T = ``temperature_gev`` = 2) with Knapen's
      recipe, :func:`suep_meson_momenta`; boosted with the scalar.
    * φ → A'A' (m_A' = ``dark_photon_mass_gev`` = 0.7) and A' → e⁺e⁻ / μ⁺μ⁻ / π⁺π⁻ at
      ``dark_photon_branchings`` = 15/15/70 %, isotropic two-body decays, :func:`decay_dark_mesons`.
    * Plus the underlying event. Meson multiplicity grows with M (≈ 19 / 60 / 149 at 125 / 400 /
      1000 GeV, REFERENCE), four charged particles per meson.
``svj`` (label 2, m_Z' ∈ 2100, 3100, 4100) — semi-visible jets from Z' → q_D q̄_D.
    * Z' with the same recoil and rapidity law as the scalar, decaying isotropically to two dark quarks
      of mass m_D/2; each showers with :func:`dark_showers` into dark hadrons of mass
      m_D = ``dark_hadron_mass_gev`` (20, the CMS benchmark) in a wide cone (``dark_jet_width``
      0.35); each dark hadron is invisible with probability ``r_inv`` (0.3), otherwise it decays
      to SM hadrons (QCD-like species). Plus an ISR jet and the underlying event.

Common laws:

* :func:`underlying_event` — Poisson(``ue_multiplicity_mean`` = 140) particles per event, p_T
  exponential with mean ``ue_pt_mean_gev`` = 0.7, flat in φ and in |η| < ``ue_eta_max`` = 3
  (stands in for MPI + beam remnants; the same for every process, no pile-up).
* Species of jet / UE / dark-hadron decay products: charged hadron, photon (from π⁰), neutral hadron
  with probabilities ``species_fractions`` = (0.60, 0.25, 0.15) — the energy fractions of a PF jet.

``n_tracks`` counts every reconstructed track (p_T > 0.1 GeV through the card's efficiency,
|η| ≤ 2.5; ``n_tracks_pt_min_gev`` raises the cut). Tuning, with the defaults: QCD has ≈ 45
reconstructed tracks with p_T > 1 GeV per event (Pythia, pTHatMin = 100 GeV: 46) and ≈ 83 in all;
SUEP has ≈ 19 / 60 / 149 dark mesons at 125 / 400 / 1000 GeV (REFERENCE: 19 / 60 / 149). What the paper
does not fix (``pt_hat_min_gev``, widths, multiplicities) are stand-in choices; change them with
keyword arguments of :func:`simulate`.

Memory: one call allocates the output images, ``n × 1.24 MB`` float32 (a 256-event chunk is 316 MB),
plus O(particles) temporaries; call it on chunks of ≤ 256 events.
"""

from __future__ import annotations

import operator

import numpy as np

from tfphys.darkshowers import detector
from tfphys.darkshowers.detector import CHARGED_HADRON, ELECTRON, INVISIBLE, MUON, NEUTRAL_HADRON, PHOTON

PROCESSES = ("qcd", "suep", "svj")
LABELS = {"qcd": 0, "suep": 1, "svj": 2}
MASSES_GEV = {
    "qcd": (0.0,),
    "suep": (125.0, 200.0, 300.0, 400.0, 700.0, 1000.0),
    "svj": (2100.0, 3100.0, 4100.0),
}
SQRT_S_GEV = 13000.0

#: Every physics knob of :func:`simulate` and its default (each process uses the ones it needs).
DEFAULT_PHYSICS = {
    # underlying event (all processes)
    "ue_multiplicity_mean": 140.0,
    "ue_pt_mean_gev": 0.7,
    "ue_eta_max": 3.0,
    # QCD hard scatter and jet fragmentation (also ISR jets)
    "pt_hat_min_gev": 100.0,
    "pt_hat_power": 5.0,
    "extra_jets_mean": 1.0,
    "extra_jet_pt_min_gev": 25.0,
    "jet_width": 0.1,
    "fragmentation_alpha": 0.6,
    "species_fractions": (0.60, 0.25, 0.15),
    # resonance (H, Z') production
    "recoil_pt_mean_gev": 30.0,
    # SUEP
    "meson_mass_gev": 2.0,
    "temperature_gev": 2.0,
    "dark_photon_mass_gev": 0.7,
    "dark_photon_branchings": (0.15, 0.15, 0.70),
    # SVJ
    "r_inv": 0.3,
    "dark_hadron_mass_gev": 20.0,
    "dark_jet_width": 0.35,
    # detector-level: p_T threshold of the stored n_tracks
    "n_tracks_pt_min_gev": detector.N_TRACKS_PT_MIN_GEV,
}

# Jet constituent multiplicity (all species): mean = max(2, slope · ln(p_T / p_T0)) — ≈ 40 at 150 GeV
# (≈ 24 charged), ≈ 67 at 1 TeV.
JET_MULTIPLICITY_SLOPE = 14.0
JET_MULTIPLICITY_PT0_GEV = 8.6
# Dark hadrons per dark quark: mean = 1 + slope · ln(Q / m_D), Q = dark-quark energy in the Z' frame.
DARK_SHOWER_MULTIPLICITY_SLOPE = 1.4
# Hadrons per visible dark-hadron decay: mean = max(2, slope · ln(m_D / 1 GeV)) ≈ 16 at 20 GeV,
# the total multiplicity of e⁺e⁻ → hadrons at √s = 20 GeV (≈ 10 charged).
DARK_HADRON_DECAY_MULTIPLICITY_SLOPE = 5.3
MAX_PT_HAT_GEV = 3000.0

ELECTRON_MASS_GEV = 0.000511
MUON_MASS_GEV = 0.105658
PION_MASS_GEV = 0.139570
# Dark-photon decay channels, in the order of ``dark_photon_branchings``.
_FERMION_MASS_GEV = np.array([ELECTRON_MASS_GEV, MUON_MASS_GEV, PION_MASS_GEV])
_FERMION_KIND = np.array([ELECTRON, MUON, CHARGED_HADRON])
_SPECIES = np.array([CHARGED_HADRON, PHOTON, NEUTRAL_HADRON])


def simulate(process: str, n: int, *, mass_gev: float | None = None,
             seed: int | np.random.SeedSequence = 0, **physics) -> dict[str, np.ndarray]:
    """Simulate ``n`` events of one process as CMS-like detector images (paper §3).

    Args:
        process: ``"qcd"``, ``"suep"`` or ``"svj"`` (:data:`PROCESSES`).
        n: number of events, ≥ 0 (keep ≤ 256 per call: the images take n × 1.24 MB).
        mass_gev: mediator mass, one of ``MASSES_GEV[process]`` (SVJ in GeV, e.g. 2100). ``None`` for
            a signal draws the mass point uniformly per event; QCD accepts ``None`` or 0.
        seed: int or ``SeedSequence``; the same seed gives the same bytes. The particle level and
            the detector use separate children of it. A passed ``SeedSequence`` is not modified.
        **physics: overrides of :data:`DEFAULT_PHYSICS` (e.g. ``r_inv=0.5``, ``temperature_gev=1``).

    Returns:
        ``images`` float32 (n, 360, 286, 3) — tracker p_T, ECAL E_T, HCAL E_T in GeV;
        ``label`` int8 (n,) — :data:`LABELS`; ``mass`` float32 (n,) — mediator mass in GeV (0 for QCD);
        ``n_tracks`` int32 (n,) — reconstructed tracks (charged particles passing the card's
        tracking efficiency, so p_T > 0.1 GeV and |η| ≤ 2.5) with smeared p_T above
        ``n_tracks_pt_min_gev`` (default 0: all of them; see :func:`detector.images_from_particles`).
    """
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; expected one of {PROCESSES}")
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"n must be a number of events ≥ 0, got {n}")
    _check_mass(process, mass_gev)
    config = _physics_config(physics)
    particle_rng, detector_rng = (np.random.default_rng(s) for s in _seed_sequence(seed).spawn(2))

    if process == "qcd" or mass_gev is not None:
        masses = np.full(n, 0.0 if process == "qcd" else float(mass_gev))
    else:
        masses = particle_rng.choice(np.array(MASSES_GEV[process]), size=n)
    if n == 0:
        images, n_tracks = np.zeros((0, *detector.IMAGE_SHAPE), np.float32), np.zeros(0, np.int32)
    else:
        generate = {"qcd": _qcd_particles, "suep": _suep_particles, "svj": _svj_particles}[process]
        particles = generate(particle_rng, masses, config)
        images, n_tracks = detector.images_from_particles(
            **particles, n_events=n, rng=detector_rng,
            n_tracks_pt_min_gev=config["n_tracks_pt_min_gev"])
    return {"images": images, "label": np.full(n, LABELS[process], np.int8),
            "mass": masses.astype(np.float32), "n_tracks": n_tracks}


# --- processes ----------------------------------------------------------------------------------


def _qcd_particles(rng, masses, cfg):
    """Particles of QCD multijet events (module docstring, ``qcd``)."""
    n = masses.size
    pt_hat = _power_law(rng, cfg["pt_hat_min_gev"], cfg["pt_hat_power"], n, MAX_PT_HAT_GEV)
    y_boost, y_star = rng.normal(0.0, 0.9, n), rng.normal(0.0, 0.8, n)
    phi1 = rng.uniform(-np.pi, np.pi, n)
    lead_pt = pt_hat[:, None] * np.exp(0.08 * rng.standard_normal((n, 2)))
    lead_eta = np.stack([y_boost + y_star, y_boost - y_star], axis=1)
    lead_phi = np.stack([phi1, phi1 + np.pi + rng.normal(0.0, 0.1, n)], axis=1)

    n_extra = rng.poisson(cfg["extra_jets_mean"], n)
    extra_event = np.repeat(np.arange(n), n_extra)
    extra_pt = _power_law(rng, cfg["extra_jet_pt_min_gev"], cfg["pt_hat_power"], extra_event.size,
                          MAX_PT_HAT_GEV)
    extra_pt = np.minimum(extra_pt, lead_pt.min(axis=1)[extra_event])  # extra jets are softer
    extra_eta = rng.normal(0.0, 1.8, extra_event.size)
    extra_phi = rng.uniform(-np.pi, np.pi, extra_event.size)

    jet_event = np.concatenate([np.repeat(np.arange(n), 2), extra_event])
    jets = fragment_jets(
        rng, np.concatenate([lead_pt.ravel(), extra_pt]), np.concatenate([lead_eta.ravel(), extra_eta]),
        detector.wrap_phi(np.concatenate([lead_phi.ravel(), extra_phi])),
        width=cfg["jet_width"], alpha=cfg["fragmentation_alpha"],
        species_fractions=cfg["species_fractions"])
    jets["event"] = jet_event[jets.pop("jet")]
    return _merge([jets, _ue(rng, n, cfg)])


def _suep_particles(rng, masses, cfg):
    """Particles of gg → H → SUEP events (module docstring, ``suep``)."""
    n = masses.size
    scalar_p4, isr = _resonance_with_isr(rng, masses, cfg)
    meson_event, meson_rest = suep_meson_momenta(
        rng, masses, meson_mass_gev=cfg["meson_mass_gev"], temperature_gev=cfg["temperature_gev"])
    meson_p4 = boost(meson_rest, scalar_p4[meson_event], masses[meson_event])
    meson, fermion_p4, kind = decay_dark_mesons(
        rng, meson_p4, meson_mass_gev=cfg["meson_mass_gev"],
        dark_photon_mass_gev=cfg["dark_photon_mass_gev"], branchings=cfg["dark_photon_branchings"])
    fermions = _from_p4(meson_event[meson], fermion_p4, kind)
    return _merge([fermions, isr, _ue(rng, n, cfg)])


def _svj_particles(rng, masses, cfg):
    """Particles of Z' → q_D q̄_D semi-visible dijet events (module docstring, ``svj``)."""
    n = masses.size
    zprime_p4, isr = _resonance_with_isr(rng, masses, cfg)
    quark_mass = cfg["dark_hadron_mass_gev"] / 2.0
    q1, q2 = two_body_decay(rng, zprime_p4, masses, quark_mass, quark_mass)
    quark_event = np.concatenate([np.arange(n), np.arange(n)])
    quark, p4, kind = dark_showers(
        rng, np.concatenate([q1, q2]), np.concatenate([masses, masses]) / 2.0,
        r_inv=cfg["r_inv"], dark_hadron_mass_gev=cfg["dark_hadron_mass_gev"],
        width=cfg["dark_jet_width"], species_fractions=cfg["species_fractions"])
    showers = _from_p4(quark_event[quark], p4, kind)
    return _merge([showers, isr, _ue(rng, n, cfg)])


def _resonance_with_isr(rng, masses, cfg):
    """Lab 4-momenta (n, 4) of a resonance of mass M with ISR-like p_T, and its recoiling ISR jet.

    p_T ~ Gamma(2, mean/2); y ~ N(0, 0.45·ln(√s/M)) clipped to |y| ≤ ln(√s/M) (a rough width of
    the parton-luminosity rapidity distribution); the ISR jet balances p_T, η ~ N(0, 1.8).
    """
    n = masses.size
    pt = rng.gamma(2.0, cfg["recoil_pt_mean_gev"] / 2.0, n)
    y_max = np.log(SQRT_S_GEV / masses)
    y = np.clip(rng.normal(0.0, 1.0, n) * 0.45 * y_max, -y_max, y_max)
    phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.hypot(masses, pt)
    p4 = np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=1)
    isr = fragment_jets(rng, pt, rng.normal(0.0, 1.8, n), detector.wrap_phi(phi + np.pi),
                        width=cfg["jet_width"], alpha=cfg["fragmentation_alpha"],
                        species_fractions=cfg["species_fractions"])
    isr["event"] = isr.pop("jet")
    return p4, isr


# --- building blocks (public so they can be tested and reused) --------------------------------


def underlying_event(rng: np.random.Generator, n_events: int, *, multiplicity_mean: float,
                     pt_mean_gev: float, eta_max: float,
                     species_fractions=(0.60, 0.25, 0.15)) -> dict[str, np.ndarray]:
    """Soft underlying event: Poisson(multiplicity_mean) particles per event, p_T ~ Exp(pt_mean_gev),
    flat in φ ∈ [−π, π) and η ∈ (−eta_max, eta_max), species from ``species_fractions``.

    Returns flat arrays ``event``, ``pt_gev``, ``eta``, ``phi``, ``kind`` (massless particles).
    """
    event = np.repeat(np.arange(n_events), rng.poisson(multiplicity_mean, n_events))
    k = event.size
    return {"event": event, "pt_gev": rng.exponential(pt_mean_gev, k),
            "eta": rng.uniform(-eta_max, eta_max, k), "phi": rng.uniform(-np.pi, np.pi, k),
            "kind": _species(rng, k, species_fractions)}


def fragment_jets(rng: np.random.Generator, jet_pt_gev: np.ndarray, jet_eta: np.ndarray,
                  jet_phi: np.ndarray, *, width: float = 0.1, alpha: float = 0.6,
                  species_fractions=(0.60, 0.25, 0.15)) -> dict[str, np.ndarray]:
    """Fragment jets into massless constituents (a fragmentation-like, not a parton-shower, model).

    * Multiplicity: 1 + Poisson(μ − 1), μ = max(2, 14·ln(p_T / 8.6 GeV)) (≈ 40 at 150 GeV).
    * Momentum fractions z ~ Dirichlet(alpha): Σz = 1 exactly, and for small ``alpha`` (0.6) a
      steeply falling spectrum with a leading particle, like D(z) ∝ z^(α−1)(1 − z)^((N−1)α−1).
      Constituent p_T = z · jet p_T.
    * Angles: (Δη, Δφ) Gaussian around the axis with σ = min(width / √(N z), 1): a typical
      constituent (z = 1/N) at ΔR ≈ width, softer ones wider (as k_T / p would give).
    * Species from ``species_fractions`` (charged, photon, neutral hadron).

    Args: (J,) arrays of jet p_T, η, φ. Returns flat arrays ``jet`` (index into the inputs),
    ``pt_gev``, ``eta``, ``phi``, ``kind``.
    """
    jet_pt_gev = np.asarray(jet_pt_gev, dtype=np.float64)
    mean = np.maximum(2.0, JET_MULTIPLICITY_SLOPE * np.log(np.maximum(jet_pt_gev, 1e-3)
                                                           / JET_MULTIPLICITY_PT0_GEV))
    n_const = 1 + rng.poisson(mean - 1.0)
    jet = np.repeat(np.arange(jet_pt_gev.size), n_const)
    z = _dirichlet(rng, jet, alpha, jet_pt_gev.size)
    sigma = np.minimum(width / np.sqrt(n_const[jet] * np.maximum(z, 1e-12)), 1.0)
    d_eta, d_phi = (sigma * rng.standard_normal(jet.size) for _ in range(2))
    return {"jet": jet, "pt_gev": z * jet_pt_gev[jet], "eta": np.asarray(jet_eta)[jet] + d_eta,
            "phi": detector.wrap_phi(np.asarray(jet_phi)[jet] + d_phi),
            "kind": _species(rng, jet.size, species_fractions)}


def suep_meson_momenta(rng: np.random.Generator, scalar_mass_gev, *, meson_mass_gev: float = 2.0,
                       temperature_gev: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Dark mesons of SUEP scalar decays in the scalar's rest frame — Knapen's recipe (REFERENCE).

    For each event of scalar mass M: meson momenta |p| are drawn from the relativistic
    Maxwell–Boltzmann law f(p) ∝ p² exp(−(E − m)/T), E = √(p² + m²), with isotropic directions,
    and mesons are added until ΣE ≥ M (the last one included). Then the mean momentum is subtracted
    from every meson (Σp = 0) and all |p| are rescaled by one factor s so that Σ√(m² + s²p²) = M
    (solved by Newton's method; ΣE = M to ~1e-15 relative).

    Args:
        scalar_mass_gev: scalar mass M per event, shape (n,) (or a scalar for one event).
    Returns:
        event: (K,) int64 index of each meson's event, sorted.
        p4: (K, 4) float64 (E, p_x, p_y, p_z) in the scalar rest frame, GeV.
    """
    masses = np.atleast_1d(np.asarray(scalar_mass_gev, dtype=np.float64))
    m, temp = float(meson_mass_gev), float(temperature_gev)
    if m <= 0 or temp <= 0:
        raise ValueError(f"meson mass and temperature must be > 0, got {m} and {temp} GeV")
    if np.any(masses <= 2.0 * m):
        raise ValueError(f"scalar masses must exceed two meson masses (2 × {m} GeV), got {masses.min()}")
    p_grid, cdf, mean_energy = _maxwell_boltzmann_table(m, temp)

    remaining = masses.copy()  # energy still to fill per event
    pending = np.arange(masses.size)
    kept_event, kept_p = [], []
    while pending.size:
        n_draw = np.ceil(1.2 * remaining[pending] / mean_energy).astype(np.int64) + 5
        event = np.repeat(pending, n_draw)
        p = np.interp(rng.random(event.size), cdf, p_grid)
        energy = np.hypot(p, m)
        within = np.cumsum(energy)
        starts = np.cumsum(n_draw) - n_draw
        within -= np.concatenate([[0.0], within])[starts][np.repeat(np.arange(pending.size), n_draw)]
        keep = within - energy < remaining[event]  # the sum before this meson was still short of M
        remaining -= np.bincount(event[keep], weights=energy[keep], minlength=masses.size)
        kept_event.append(event[keep])
        kept_p.append(p[keep])
        pending = pending[remaining[pending] > 0]

    event = np.concatenate(kept_event)
    order = np.argsort(event, kind="stable")
    event, p = event[order], np.concatenate(kept_p)[order]
    p3 = p[:, None] * _isotropic(rng, p.size)
    return event, _balance_momenta(event, p3, m, masses)


def decay_dark_mesons(rng: np.random.Generator, meson_p4: np.ndarray, *, meson_mass_gev: float = 2.0,
                      dark_photon_mass_gev: float = 0.7,
                      branchings=(0.15, 0.15, 0.70)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """φ → A'A', then A' → e⁺e⁻ / μ⁺μ⁻ / π⁺π⁻ with probabilities ``branchings`` (REFERENCE).

    Both are isotropic two-body decays in the parent frame (:func:`two_body_decay`), so 4-momentum is
    conserved exactly at each step. Args: (K, 4) meson 4-momenta (E, p). Returns ``meson`` (4K,)
    index of each fermion's meson, ``p4`` (4K, 4) and ``kind`` (4K,) (ELECTRON, MUON, CHARGED_HADRON).
    """
    branchings = np.asarray(branchings, dtype=np.float64)
    if branchings.shape != (3,) or np.any(branchings < 0) or not np.isclose(branchings.sum(), 1.0):
        raise ValueError(f"dark_photon_branchings must be three probabilities (ee, μμ, ππ) summing "
                         f"to 1, got {tuple(branchings)}")
    if not meson_mass_gev > 2.0 * dark_photon_mass_gev > 4.0 * PION_MASS_GEV:
        raise ValueError(f"need m_φ > 2 m_A' > 4 m_π, got m_φ = {meson_mass_gev}, "
                         f"m_A' = {dark_photon_mass_gev} GeV")
    n_mesons = meson_p4.shape[0]
    photon1, photon2 = two_body_decay(rng, meson_p4, meson_mass_gev, dark_photon_mass_gev,
                                      dark_photon_mass_gev)
    photons = np.concatenate([photon1, photon2])
    meson = np.concatenate([np.arange(n_mesons), np.arange(n_mesons)])
    channel = rng.choice(3, size=photons.shape[0], p=branchings / branchings.sum())
    fermion_mass = _FERMION_MASS_GEV[channel]
    f1, f2 = two_body_decay(rng, photons, dark_photon_mass_gev, fermion_mass, fermion_mass)
    return (np.concatenate([meson, meson]), np.concatenate([f1, f2]),
            np.concatenate([_FERMION_KIND[channel]] * 2))


def dark_showers(rng: np.random.Generator, quark_p4: np.ndarray, scale_gev: np.ndarray, *,
                 r_inv: float = 0.3, dark_hadron_mass_gev: float = 20.0, width: float = 0.35,
                 species_fractions=(0.60, 0.25, 0.15)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Semi-visible jets: dark quarks → dark hadrons → (invisible | SM hadrons).

    * Dark hadrons per quark: 1 + Poisson(1.4·ln(Q / m_D)) with Q = ``scale_gev`` (the quark energy
      in the Z' frame, M/2), capped so N·m_D ≤ 0.9 Q — ≈ 6.5 at Q = 1 TeV.
    * p_T fractions z ~ Dirichlet(1) along the quark axis; (Δη, Δφ) Gaussian with
      σ = min(width / √(N z), 1) (``width`` 0.35, wider than QCD's 0.1); mass m_D.
    * Each dark hadron is invisible with probability ``r_inv`` (kind INVISIBLE, carries its 4-momentum);
      a visible one decays isotropically in its rest frame into 2 + Poisson(μ − 2) massless SM hadrons,
      μ = 5.3·ln(m_D / GeV) (≈ 16 at 20 GeV, e⁺e⁻-like), with energies balanced to m_D like the SUEP
      mesons and species from ``species_fractions``; then boosted. (The q q̄ two-prong structure is
      not modelled: boosted by γ ≳ 5, the products sit within ΔR ≲ 1/γ anyway.)

    Args: (Q, 4) dark-quark 4-momenta, (Q,) scale. Returns ``quark`` (index into the inputs),
    ``p4`` (·, 4) and ``kind`` of the final particles.
    """
    if not 0.0 <= r_inv <= 1.0:
        raise ValueError(f"r_inv must be a probability in [0, 1], got {r_inv}")
    m = float(dark_hadron_mass_gev)
    scale_gev = np.asarray(scale_gev, dtype=np.float64)
    pt, eta, phi = pt_eta_phi(quark_p4)
    mean = DARK_SHOWER_MULTIPLICITY_SLOPE * np.log(np.maximum(scale_gev / m, 1.0))
    cap = np.maximum(1, np.floor(0.9 * scale_gev / m)).astype(np.int64)
    n_hadrons = np.minimum(1 + rng.poisson(mean), cap)
    quark = np.repeat(np.arange(pt.size), n_hadrons)
    z = _dirichlet(rng, quark, 1.0, pt.size)
    sigma = np.minimum(width / np.sqrt(n_hadrons[quark] * z), 1.0)
    d_eta, d_phi = (sigma * rng.standard_normal(quark.size) for _ in range(2))
    hadron_p4 = _p4_from_pt_eta_phi_m(z * pt[quark], eta[quark] + d_eta, phi[quark] + d_phi, m)

    invisible = rng.random(quark.size) < r_inv
    visible = np.flatnonzero(~invisible)
    n_products = 2 + rng.poisson(max(DARK_HADRON_DECAY_MULTIPLICITY_SLOPE * np.log(m) - 2.0, 0.0),
                                 visible.size)
    parent = np.repeat(np.arange(visible.size), n_products)
    p3 = rng.gamma(3.0, 1.0, parent.size)[:, None] * _isotropic(rng, parent.size)  # massless MB
    rest = _balance_momenta(parent, p3, 0.0, np.full(visible.size, m))
    products = boost(rest, hadron_p4[visible][parent], m)
    quark_out = np.concatenate([quark[invisible], quark[visible][parent]])
    kind = np.concatenate([np.full(invisible.sum(), INVISIBLE),
                           _species(rng, parent.size, species_fractions)])
    return quark_out, np.concatenate([hadron_p4[invisible], products]), kind


def two_body_decay(rng: np.random.Generator, parent_p4: np.ndarray, parent_mass_gev, m1_gev,
                   m2_gev) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic two-body decays P → 1 + 2 (in P's rest frame), boosted to the lab.

    Args: (K, 4) parent 4-momenta (E, p); parent and daughter masses as scalars or (K,) arrays.
    Returns the two daughters' (K, 4) 4-momenta; their sum is the parent's 4-momentum.
    """
    k = parent_p4.shape[0]
    big_m, m1, m2 = (np.broadcast_to(np.asarray(x, dtype=np.float64), (k,))
                     for x in (parent_mass_gev, m1_gev, m2_gev))
    p_star_sq = (big_m**2 - (m1 + m2) ** 2) * (big_m**2 - (m1 - m2) ** 2) / (2 * big_m) ** 2
    p_star = np.sqrt(np.maximum(p_star_sq, 0.0))
    p3 = p_star[:, None] * _isotropic(rng, k)
    d1 = np.concatenate([np.hypot(p_star, m1)[:, None], p3], axis=1)
    d2 = np.concatenate([np.hypot(p_star, m2)[:, None], -p3], axis=1)
    return boost(d1, parent_p4, big_m), boost(d2, parent_p4, big_m)


# --- helpers ------------------------------------------------------------------------------------


def _balance_momenta(group, p3, mass, total_energy):
    """Knapen's rescaling: per group, subtract the mean momentum, then scale every |p| by one factor s
    with Σ√(m² + s²|p|²) = E_total. Returns (K, 4) 4-momenta (E, p) with Σp = 0, ΣE = E_total."""
    n_groups = total_energy.size
    count = np.bincount(group, minlength=n_groups)
    if np.any(count * mass >= total_energy):
        raise ValueError("cannot balance momenta: the particles' masses exceed the available energy")
    mean_p = np.stack([np.bincount(group, weights=p3[:, i], minlength=n_groups) for i in range(3)], 1)
    p3 = p3 - (mean_p / np.maximum(count, 1)[:, None])[group]
    q = np.sqrt((p3**2).sum(axis=1))
    # Newton from above on a convex increasing function: monotone convergence, quadratic at the end.
    scale = total_energy / np.bincount(group, weights=q, minlength=n_groups)
    for _ in range(60):
        energy = np.hypot(mass, scale[group] * q)
        excess = np.bincount(group, weights=energy, minlength=n_groups) - total_energy
        slope = np.bincount(group, weights=scale[group] * q**2 / energy, minlength=n_groups)
        scale = scale - excess / slope
        if np.all(np.abs(excess) <= 1e-14 * total_energy):
            break
    p3 = p3 * scale[group][:, None]
    return np.concatenate([np.hypot(mass, np.sqrt((p3**2).sum(axis=1)))[:, None], p3], axis=1)


def _maxwell_boltzmann_table(mass, temperature, n_grid=4096):
    """Inverse-CDF table of f(p) ∝ p² exp(−(√(p² + m²) − m)/T), and the mean energy."""
    p = np.linspace(0.0, 60.0 * temperature + 10.0 * mass, n_grid)
    energy = np.hypot(p, mass)
    density = p**2 * np.exp(-(energy - mass) / temperature)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(p))])
    mean_energy = np.sum(energy * density) / np.sum(density)
    return p, cdf / cdf[-1], mean_energy


def boost(p4, parent_p4, parent_mass):
    """Boost (K, 4) rest-frame 4-momenta to the frame where the parent has ``parent_p4`` (K, 4)."""
    parent_mass = np.broadcast_to(np.asarray(parent_mass, dtype=np.float64), (p4.shape[0],))
    gamma = parent_p4[:, 0] / parent_mass
    beta = parent_p4[:, 1:] / parent_p4[:, :1]
    beta_p = (beta * p4[:, 1:]).sum(axis=1)
    # p' = p + [γ²/(γ+1) β·p + γE] β ; E' = γ(E + β·p)  (γ²/(γ+1) = (γ−1)/β², stable at β → 0)
    coefficient = gamma**2 / (gamma + 1.0) * beta_p + gamma * p4[:, 0]
    return np.concatenate([(gamma * (p4[:, 0] + beta_p))[:, None],
                           p4[:, 1:] + coefficient[:, None] * beta], axis=1)


def _isotropic(rng, k):
    """(k, 3) unit vectors uniform on the sphere."""
    cos_theta = rng.uniform(-1.0, 1.0, k)
    phi = rng.uniform(-np.pi, np.pi, k)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=1)


def _dirichlet(rng, group, alpha, n_groups):
    """Per-group Dirichlet(alpha) fractions for grouped items (Gamma draws normalised per group)."""
    g = np.maximum(rng.gamma(alpha, 1.0, group.size), 1e-300)
    return g / np.bincount(group, weights=g, minlength=n_groups)[group]


def _power_law(rng, x_min, power, k, x_max):
    """Draws from dN/dx ∝ x^−power above x_min (inverse CDF), capped at x_max."""
    return np.minimum(x_min * rng.random(k) ** (-1.0 / (power - 1.0)), x_max)


def _species(rng, k, fractions):
    """Particle kinds (charged hadron, photon, neutral hadron) with probabilities ``fractions``."""
    fractions = np.asarray(fractions, dtype=np.float64)
    return _SPECIES[rng.choice(3, size=k, p=fractions / fractions.sum())]


def _p4_from_pt_eta_phi_m(pt, eta, phi, mass):
    """(K, 4) 4-momenta (E, p_x, p_y, p_z) from p_T, η, φ and mass."""
    energy = np.sqrt((pt * np.cosh(eta)) ** 2 + mass**2)
    return np.stack([energy, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)


def pt_eta_phi(p4):
    """p_T, η, φ ∈ [−π, π) of (K, 4) 4-momenta (p_T = 0 gives η = ±inf)."""
    pt = np.hypot(p4[:, 1], p4[:, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(p4[:, 3] / pt)
    return pt, eta, detector.wrap_phi(np.arctan2(p4[:, 2], p4[:, 1]))


def _from_p4(event, p4, kind):
    """Detector input arrays of particles given as 4-momenta."""
    pt, eta, phi = pt_eta_phi(p4)
    return {"event": event, "pt_gev": pt, "eta": eta, "phi": phi, "kind": kind, "energy_gev": p4[:, 0]}


def _ue(rng, n_events, cfg):
    return underlying_event(rng, n_events, multiplicity_mean=cfg["ue_multiplicity_mean"],
                            pt_mean_gev=cfg["ue_pt_mean_gev"], eta_max=cfg["ue_eta_max"],
                            species_fractions=cfg["species_fractions"])


def _merge(parts):
    """Concatenate particle dicts into detector inputs, dropping particles with p_T = 0."""
    merged = {}
    for key in ("event", "pt_gev", "eta", "phi", "kind"):
        merged[key] = np.concatenate([part[key] for part in parts])
    merged["energy_gev"] = np.concatenate([
        part["energy_gev"] if "energy_gev" in part else part["pt_gev"] * np.cosh(part["eta"])
        for part in parts])
    keep = merged["pt_gev"] > 0
    return {key: value[keep] for key, value in merged.items()}


def _check_mass(process, mass_gev):
    if mass_gev is None:
        return
    if process == "qcd":
        if mass_gev != 0:
            raise ValueError(f"mass_gev={mass_gev!r} given for qcd; expected None or 0")
    elif mass_gev not in MASSES_GEV[process]:
        raise ValueError(f"mass_gev={mass_gev!r} is not a {process} mass point; expected None or one "
                         f"of {MASSES_GEV[process]}")


def _physics_config(overrides):
    unknown = sorted(set(overrides) - set(DEFAULT_PHYSICS))
    if unknown:
        raise ValueError(f"unknown physics setting(s) {unknown}; "
                         f"expected some of {sorted(DEFAULT_PHYSICS)}")
    return {**DEFAULT_PHYSICS, **overrides}


def _seed_sequence(seed):
    """A fresh SeedSequence for ``seed`` (a copy if one is passed, so spawning does not alter it)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size,
                                      n_children_spawned=seed.n_children_spawned)
    return np.random.SeedSequence(operator.index(seed))
