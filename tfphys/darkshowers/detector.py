"""A CMS-like detector in numpy: particles → tracker / ECAL / HCAL images (CoDAE paper §1.2, §3).

This is a stand-in for Delphes with the CMS Run-2 card (``cards/delphes_card_CMS.tcl``, the
``SimpleCalorimeter`` version with 0.0174 ECAL cells), reduced to what the CoDAE images need.
It is generator-agnostic: the toy generator (:mod:`.toy`) and a future Pythia generator both hand it
flat particle arrays of a chunk of events.

Image layout (paper §3, :mod:`tfphys.darkshowers.format`): ``(n_events, 360, 286, 3)`` float32 with axes
(event, φ row, η column, channel). Row ``i`` covers φ ∈ [−π + i·1°, −π + (i+1)·1°); column ``j``
covers η ∈ [−2.4882 + 0.0174·j, −2.4882 + 0.0174·(j+1)), i.e. |η| < 143·0.0174 = 2.4882.

Channels, with the card's numbers:

0. **Tracker** — Σ p_T (GeV) of reconstructed tracks per pixel, at the track's direction at the
   vertex. Tracks are charged hadrons, electrons and muons, kept with the card's tracking
   efficiency (0 for p_T ≤ 0.1 GeV or |η| > 2.5; charged hadrons 0.70 / 0.95 below / above 1 GeV for
   |η| ≤ 1.5 and 0.60 / 0.85 for 1.5 < |η| ≤ 2.5; electron and muon formulas likewise from the card)
   and log-normally smeared with the card's relative resolution, e.g. charged hadrons
   σ(p_T)/p_T = √(0.01² + (1.5·10⁻⁴ p_T)²) for |η| ≤ 0.5. Tracks with 2.4882 < |η| < 2.5 are
   reconstructed (they count in ``n_tracks``) but fall outside the image.
1. **ECAL** — E_T (GeV) of electrons and photons (π⁰ photons included: 100 % electromagnetic),
   on the card's 0.0174 × 1° cells, one cell per pixel. Cell energy smeared log-normally with
   σ(E) = (1 + 0.64η²)·√(0.008²E² + 0.11²E + 0.40²) for |η| ≤ 1.5 and
   (2.16 + 5.6(|η| − 2)²)·√(…) for 1.5 < |η| ≤ 2.5; kept if E ≥ 0.5 GeV **and** E ≥ 2σ(E)
   (card: ``EnergyMin 0.5``, ``EnergySignificanceMin 2.0``).
2. **HCAL** — E_T (GeV) of charged and neutral hadrons (100 % hadronic) on 0.087 × 5° towers,
   σ(E) = √(0.05²E² + 1.5²E), kept if E ≥ 1 GeV **and** E ≥ 2σ(E) (``EnergyMin 1.0``,
   ``EnergySignificanceMin 2.0``: together an effective threshold of ≈ 9 GeV per tower). Each tower
   is up-sampled ×25 as in the paper: its 5 × 5 pixels receive E_T/25 each.

Choices made here (explicitly, since this is not Delphes):

* **Tower alignment.** HCAL towers are the blocks of the 5×5 / stride-5 'SAME' down-sampling of
  Algorithm 1: rows ``[5i, 5i+5)`` (72 blocks, 360 = 72·5 needs no padding) and columns
  ``[5j − 2, 5j + 3)`` (58 blocks; TF pads 286 → 290 with two columns on each side). So
  ``downsample(images)[..., 2]`` is exactly the tower E_T map. Towers are a uniform 0.087 grid over
  |η| < 2.4882 + 2·0.0174 = 2.5230 (the real card has 0.087 up to |η| = 1.653 and coarser towers
  beyond; the paper's images are uniformly up-sampled, so we keep one grid).
* **Edge towers.** The first and last tower columns stick out of the image by two pixel columns
  (0.0348 in η). They collect the particles of their full η range and give E_T/25 to each of their
  pixels; only the 15 pixels inside the image are stored, so 10/25 of an edge tower's energy lies
  outside the image — the image is a crop of a wider detector, and every in-image HCAL pixel
  carries exactly 1/25 of its tower.
* **Calorimeter position.** Particles are propagated to the calorimeter as by Delphes's
  ``ParticlePropagator`` (B = 3.8 T along z, cylinder R = 1.29 m, half-length 3.0 m): charged
  particles follow a helix, so they reach the calorimeter at a shifted φ (and, for loopers,
  on the endcap at a shifted η) and a charged particle with p_T ≲ 0.74 GeV never reaches the barrel.
  The charge sign is an optional input; if absent it is drawn at random (±1 with probability ½).
  Tracks are drawn at their vertex direction, like Delphes's ``Track.Eta/Phi``.
* **E_T of a calorimeter cell** is E/cosh(η_centre), E = Σ particle energies, as in Delphes. So
  E_T is exactly conserved only for deposits at a cell's η centre (with smearing disabled).
* No noise in empty cells, no ECAL/HCAL energy sharing (K⁰_S, Λ are not separate kinds). Pile-up
  is the generator's business (:mod:`.pythia` overlays it); particles flagged as not from the
  primary vertex (``primary=False``) leave no track — Delphes's ``TrackPileUpSubtractor``
  (charged-hadron subtraction) — but deposit in the calorimeters.

Everything is vectorised over the whole chunk: particles are mapped to flat cell indices, summed with
``np.unique`` + ``np.bincount`` over occupied cells only, and written into the image; memory beyond
the output (n_events · 1.24 MB) is O(number of particles).
"""

from __future__ import annotations

import numpy as np

# Particle kinds (what a generator hands the detector).
CHARGED_HADRON = 0
ELECTRON = 1
MUON = 2
PHOTON = 3
NEUTRAL_HADRON = 4
INVISIBLE = 5  # neutrinos, dark-matter stand-ins: leave nothing
KINDS = (CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON, INVISIBLE)

# Image geometry (paper §1.2, §3).
N_PHI = 360
N_ETA = 286
TRACKER, ECAL, HCAL = 0, 1, 2
N_CHANNELS = 3
IMAGE_SHAPE = (N_PHI, N_ETA, N_CHANNELS)
ETA_PIXEL = 0.0174
PHI_PIXEL = 2.0 * np.pi / N_PHI
ETA_MAX = N_ETA / 2 * ETA_PIXEL  # 2.4882
TRACKER_ETA_MAX = 2.5

# HCAL towers = 5 × 5 pixel blocks of the 'SAME'-padded down-sampling (Algorithm 1).
TOWER_PIXELS = 5
N_TOWER_PHI = N_PHI // TOWER_PIXELS  # 72
N_TOWER_ETA = -(-N_ETA // TOWER_PIXELS)  # 58
TOWER_ETA_PAD = (N_TOWER_ETA * TOWER_PIXELS - N_ETA) // 2  # 2 columns on each side
TOWER_ETA = TOWER_PIXELS * ETA_PIXEL  # 0.087
TOWER_PHI = TOWER_PIXELS * PHI_PIXEL  # 5°
TOWER_ETA_MAX = ETA_MAX + TOWER_ETA_PAD * ETA_PIXEL  # 2.5230

# ParticlePropagator.
B_FIELD_T = 3.8
CALO_RADIUS_M = 1.29
CALO_HALF_LENGTH_M = 3.0
_GEV_PER_TESLA_METRE = 0.299792458  # p_T [GeV] = 0.3 · B [T] · r [m]

# Calorimeter thresholds (card: EnergyMin, EnergySignificanceMin).
ECAL_ENERGY_MIN_GEV = 0.5
HCAL_ENERGY_MIN_GEV = 1.0
ECAL_SIGNIFICANCE_MIN = 2.0
HCAL_SIGNIFICANCE_MIN = 2.0

#: Default p_T threshold of ``n_tracks``: 0, i.e. every reconstructed track (Delphes's ``Track``
#: collection; the efficiency already requires p_T > 0.1 GeV, |η| ≤ 2.5). With it the toy's nTracks
#: AUROCs of SUEP vs QCD come out close to the paper's Table 1; 1 GeV is the CMS SUEP-analysis cut.
N_TRACKS_PT_MIN_GEV = 0.0


def tracking_efficiency(kind: np.ndarray, pt_gev: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Probability that a particle gives a reconstructed track (card ``*TrackingEfficiency``).

    Charged hadrons: |η| ≤ 1.5: 0.70 (0.1 < p_T ≤ 1 GeV), 0.95 (p_T > 1); 1.5 < |η| ≤ 2.5: 0.60, 0.85.
    Electrons: |η| ≤ 1.5: 0.73, 0.95 (1–100 GeV), 0.99 (> 100); endcap 0.50, 0.83, 0.90.
    Muons: |η| ≤ 1.5: 0.75, 0.99; endcap 0.70, 0.98. Zero for p_T ≤ 0.1 GeV, |η| > 2.5 and
    neutral kinds. All arrays have the particles' shape; returns float64 in [0, 1].
    """
    kind, pt_gev, abs_eta = np.asarray(kind), np.asarray(pt_gev), np.abs(eta)
    barrel = abs_eta <= 1.5
    soft = pt_gev <= 1.0
    hard = pt_gev > 100.0
    hadron = np.where(barrel, np.where(soft, 0.70, 0.95), np.where(soft, 0.60, 0.85))
    electron = np.where(barrel, np.select([soft, hard], [0.73, 0.99], 0.95),
                        np.select([soft, hard], [0.50, 0.90], 0.83))
    muon = np.where(barrel, np.where(soft, 0.75, 0.99), np.where(soft, 0.70, 0.98))
    eff = np.select([kind == CHARGED_HADRON, kind == ELECTRON, kind == MUON],
                    [hadron, electron, muon], 0.0)
    return np.where((pt_gev > 0.1) & (abs_eta <= TRACKER_ETA_MAX), eff, 0.0)


def track_pt_resolution(kind: np.ndarray, pt_gev: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Relative track resolution σ(p_T)/p_T (card ``*MomentumSmearing``, after arXiv:1405.6569).

    √(a² + (b·p_T)²) with (a, b) for |η| ≤ 0.5 / 0.5–1.5 / 1.5–2.5 of
    charged hadrons (0.01, 1.5e-4) / (0.015, 2.5e-4) / (0.025, 5.5e-4),
    electrons (0.03, 1.3e-3) / (0.05, 1.7e-3) / (0.15, 3.1e-3),
    muons (0.01, 1.0e-4) / (0.015, 1.5e-4) / (0.025, 3.5e-4).
    """
    kind, pt_gev, abs_eta = np.asarray(kind), np.asarray(pt_gev), np.abs(eta)
    region = np.digitize(abs_eta, (0.5, 1.5))  # 0 central, 1 barrel, 2 endcap
    table = {  # kind: ((a per region), (b per region))
        CHARGED_HADRON: ((0.01, 0.015, 0.025), (1.5e-4, 2.5e-4, 5.5e-4)),
        ELECTRON: ((0.03, 0.05, 0.15), (1.3e-3, 1.7e-3, 3.1e-3)),
        MUON: ((0.01, 0.015, 0.025), (1.0e-4, 1.5e-4, 3.5e-4)),
    }
    a = np.zeros(pt_gev.shape)
    b = np.zeros(pt_gev.shape)
    for k, (a_k, b_k) in table.items():
        a = np.where(kind == k, np.take(a_k, region), a)
        b = np.where(kind == k, np.take(b_k, region), b)
    return np.hypot(a, b * pt_gev)


def ecal_resolution_gev(energy_gev: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """ECAL σ(E) in GeV (card ``ECal`` ResolutionFormula, valid for |η| ≤ 2.5)."""
    stochastic = np.sqrt((0.008 * energy_gev) ** 2 + 0.11**2 * energy_gev + 0.40**2)
    abs_eta = np.abs(eta)
    shape = np.where(abs_eta <= 1.5, 1.0 + 0.64 * eta**2, 2.16 + 5.6 * (abs_eta - 2.0) ** 2)
    return shape * stochastic


def hcal_resolution_gev(energy_gev: np.ndarray) -> np.ndarray:
    """HCAL σ(E) in GeV for |η| ≤ 3 (card ``HCal`` ResolutionFormula): √(0.05²E² + 1.5²E)."""
    return np.sqrt((0.05 * energy_gev) ** 2 + 1.5**2 * energy_gev)


def log_normal_smear(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Delphes's ``LogNormal(mean, sigma)``: positive draws with this mean and standard deviation."""
    mean = np.asarray(mean, dtype=np.float64)
    safe = np.where(mean > 0, mean, 1.0)
    b2 = np.log1p((sigma / safe) ** 2)
    draw = np.exp(np.log(safe) - 0.5 * b2 + np.sqrt(b2) * rng.standard_normal(mean.shape))
    return np.where(mean > 0, draw, 0.0)


def propagate_to_calorimeter(pt_gev: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                             charge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(η, φ) of the point where a particle from the origin meets the calorimeter surface.

    Delphes ``ParticlePropagator`` geometry: a cylinder of radius 1.29 m and half-length 3.0 m in
    B = 3.8 T. A neutral particle keeps its direction. A charged one moves on a helix of
    transverse radius r = p_T / (0.3 B); after turning by α its transverse distance from the axis is
    2r sin(α/2), its position azimuth φ − qα/2 and its z = rα sinh η. It hits the barrel if
    2r ≥ R and |z| ≤ L there, otherwise the endcap at |z| = L. A particle that reaches neither
    (η = 0 looper) gets η = NaN, i.e. no deposit. Returns arrays shaped like the inputs, φ in [−π, π).
    """
    pt_gev, eta, phi = (np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi))
    charge = np.asarray(charge, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        radius = pt_gev / (_GEV_PER_TESLA_METRE * B_FIELD_T)
        sinh_eta = np.sinh(eta)
        x = CALO_RADIUS_M / (2.0 * radius)
        alpha_barrel = 2.0 * np.arcsin(np.minimum(x, 1.0))
        z_barrel = radius * alpha_barrel * sinh_eta
        barrel = (x <= 1.0) & (np.abs(z_barrel) <= CALO_HALF_LENGTH_M)
        alpha_endcap = CALO_HALF_LENGTH_M / (radius * np.abs(sinh_eta))
        rho_endcap = 2.0 * radius * np.abs(np.sin(alpha_endcap / 2.0))
        eta_endcap = np.sign(eta) * np.arcsinh(CALO_HALF_LENGTH_M / rho_endcap)
        eta_barrel = np.arcsinh(z_barrel / CALO_RADIUS_M)
        eta_calo = np.where(barrel, eta_barrel, eta_endcap)
        alpha = np.where(barrel, alpha_barrel, alpha_endcap)
        eta_calo = np.where(np.isfinite(alpha), eta_calo, np.nan)
        phi_calo = wrap_phi(phi - charge * alpha / 2.0)
    neutral = charge == 0
    return np.where(neutral, eta, eta_calo), np.where(neutral, phi, phi_calo)


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles to [−π, π)."""
    return np.mod(np.asarray(phi) + np.pi, 2.0 * np.pi) - np.pi


def pixel_column(eta: np.ndarray) -> np.ndarray:
    """η column of the image (int64); −1 outside |η| < 2.4882."""
    col = np.floor((np.asarray(eta) + ETA_MAX) / ETA_PIXEL)
    return np.where((col >= 0) & (col < N_ETA), col, -1).astype(np.int64)


def pixel_row(phi: np.ndarray) -> np.ndarray:
    """φ row of the image (int64, 0…359) for φ in [−π, π) (other angles are wrapped)."""
    row = np.floor((wrap_phi(phi) + np.pi) / PHI_PIXEL).astype(np.int64)
    return np.minimum(row, N_PHI - 1)  # guards φ = π − ε rounding up to 360


def pixel_eta_centre(column: np.ndarray) -> np.ndarray:
    """η at the centre of an image column."""
    return -ETA_MAX + (np.asarray(column) + 0.5) * ETA_PIXEL


def tower_column(eta: np.ndarray) -> np.ndarray:
    """HCAL tower column (int64, 0…57); −1 outside |η| < 2.5230. Tower j spans pixel columns
    [5j − 2, 5j + 3), clipped to the image."""
    col = np.floor((np.asarray(eta) + TOWER_ETA_MAX) / TOWER_ETA)
    return np.where((col >= 0) & (col < N_TOWER_ETA), col, -1).astype(np.int64)


def tower_eta_centre(column: np.ndarray) -> np.ndarray:
    """η at the centre of an HCAL tower column."""
    return -TOWER_ETA_MAX + (np.asarray(column) + 0.5) * TOWER_ETA


def images_from_particles(
    event: np.ndarray,
    pt_gev: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    kind: np.ndarray,
    *,
    n_events: int,
    rng: np.random.Generator,
    charge: np.ndarray | None = None,
    energy_gev: np.ndarray | None = None,
    smear: bool = True,
    apply_efficiency: bool = True,
    propagate: bool = True,
    n_tracks_pt_min_gev: float = N_TRACKS_PT_MIN_GEV,
    ecal_significance_min: float = ECAL_SIGNIFICANCE_MIN,
    hcal_significance_min: float = HCAL_SIGNIFICANCE_MIN,
    primary: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Detector images and track counts of a chunk of events.

    Args:
        event: (P,) int, index of each particle's event in the chunk, 0 ≤ event < n_events.
        pt_gev, eta, phi: (P,) float, particle momentum at the vertex (φ in [−π, π)).
        kind: (P,) int, one of :data:`KINDS`.
        n_events: number of events in the chunk (events without particles give empty images).
        rng: random generator for efficiencies, charges and smearing (the only randomness).
        charge: optional (P,) charge sign of charged kinds (±1); drawn at random if None.
        energy_gev: optional (P,) particle energy; default p_T cosh η (massless particles).
        smear: apply track and calorimeter resolutions (False: exact energies, thresholds kept).
        apply_efficiency: apply tracking efficiencies (False: every charged particle with
            p_T > 0.1 GeV and |η| ≤ 2.5 is reconstructed).
        propagate: bend charged particles to the calorimeter (False: straight lines).
        n_tracks_pt_min_gev: ``n_tracks`` counts reconstructed tracks with smeared p_T above this.
        ecal_significance_min, hcal_significance_min: the card's E ≥ S·σ(E) cut (0 disables it).
        primary: optional (P,) bool, False for pile-up particles: they give no track (nor count in
            ``n_tracks``) but still deposit in the calorimeters. Default: all primary.

    Returns:
        images: (n_events, 360, 286, 3) float32, tracker p_T / ECAL E_T / HCAL E_T in GeV.
        n_tracks: (n_events,) int32, reconstructed tracks (charged hadrons, electrons, muons that
            pass the tracking efficiency, hence |η| ≤ 2.5 and p_T > 0.1 GeV) with smeared
            p_T > ``n_tracks_pt_min_gev``.
    """
    event, kind = np.asarray(event), np.asarray(kind)
    pt_gev, eta, phi = (np.asarray(x, dtype=np.float64) for x in (pt_gev, eta, phi))
    n_particles = event.shape[0]
    for name, array in (("pt_gev", pt_gev), ("eta", eta), ("phi", phi), ("kind", kind)):
        if array.shape != (n_particles,):
            raise ValueError(f"{name} has shape {array.shape}; expected ({n_particles},) like event")
    if n_particles and (event.min() < 0 or event.max() >= n_events):
        raise ValueError(f"event indices must lie in [0, {n_events}); got {event.min()}…{event.max()}")
    if n_particles and not np.isin(kind, KINDS).all():
        raise ValueError(f"unknown particle kinds {np.setdiff1d(kind, KINDS)}; expected {KINDS}")
    event = event.astype(np.int64)
    if energy_gev is None:
        energy_gev = pt_gev * np.cosh(eta)
    images = np.zeros((n_events, *IMAGE_SHAPE), dtype=np.float32)
    flat = images.reshape(-1)

    # Random numbers are drawn for every particle in a fixed order, so results depend on the seed only.
    efficiency_draw = rng.random(n_particles)
    pt_noise = rng.standard_normal(n_particles)
    random_sign = np.where(rng.random(n_particles) < 0.5, -1.0, 1.0)

    # --- tracker -------------------------------------------------------------------------------
    charged = (kind == CHARGED_HADRON) | (kind == ELECTRON) | (kind == MUON)
    if apply_efficiency:
        reconstructed = efficiency_draw < tracking_efficiency(kind, pt_gev, eta)
    else:
        reconstructed = charged & (pt_gev > 0.1) & (np.abs(eta) <= TRACKER_ETA_MAX)
    if primary is not None:
        reconstructed &= np.asarray(primary, dtype=bool)
    track_pt = pt_gev
    if smear:
        b2 = np.log1p(track_pt_resolution(kind, pt_gev, eta) ** 2)
        track_pt = pt_gev * np.exp(np.sqrt(b2) * pt_noise - 0.5 * b2)  # log-normal, mean p_T
    counted = reconstructed & (track_pt > n_tracks_pt_min_gev)
    n_tracks = np.bincount(event[counted], minlength=n_events).astype(np.int32)
    column = pixel_column(eta)
    in_image = reconstructed & (column >= 0)
    cells = _pixel_index(event[in_image], pixel_row(phi[in_image]), column[in_image])
    cells, pt_sum = _sum_by_cell(cells, track_pt[in_image])
    flat[cells * N_CHANNELS + TRACKER] = pt_sum

    # --- calorimeters --------------------------------------------------------------------------
    eta_calo, phi_calo = eta, phi
    if propagate:
        sign = random_sign if charge is None else np.sign(np.asarray(charge, dtype=np.float64))
        eta_calo, phi_calo = propagate_to_calorimeter(pt_gev, eta, phi, np.where(charged, sign, 0.0))
    with np.errstate(invalid="ignore"):  # NaN η (particles that never reach the calorimeter)
        electromagnetic = ((kind == ELECTRON) | (kind == PHOTON)) & (np.abs(eta_calo) < ETA_MAX)
        hadronic = ((kind == CHARGED_HADRON) | (kind == NEUTRAL_HADRON)) & (
            np.abs(eta_calo) < TOWER_ETA_MAX)

    # ECAL: one cell per pixel.
    column = pixel_column(np.where(electromagnetic, eta_calo, np.inf))
    electromagnetic &= column >= 0  # also drops a rounding edge at |η| = 2.4882
    cells = _pixel_index(event[electromagnetic], pixel_row(phi_calo[electromagnetic]),
                         column[electromagnetic])
    cells, energy = _sum_by_cell(cells, energy_gev[electromagnetic])
    cell_eta = pixel_eta_centre(cells % N_ETA)
    if smear:
        energy = log_normal_smear(rng, energy, ecal_resolution_gev(energy, cell_eta))
    keep = (energy >= ECAL_ENERGY_MIN_GEV) & (
        energy >= ecal_significance_min * ecal_resolution_gev(energy, cell_eta))
    flat[cells[keep] * N_CHANNELS + ECAL] = energy[keep] / np.cosh(cell_eta[keep])

    # HCAL: 0.087 × 5° towers, each written as 5 × 5 pixels of E_T / 25.
    tower_col = tower_column(np.where(hadronic, eta_calo, np.inf))
    hadronic &= tower_col >= 0
    tower_row = pixel_row(phi_calo[hadronic]) // TOWER_PIXELS
    towers = (event[hadronic] * N_TOWER_PHI + tower_row) * N_TOWER_ETA + tower_col[hadronic]
    towers, energy = _sum_by_cell(towers, energy_gev[hadronic])
    tower_eta = tower_eta_centre(towers % N_TOWER_ETA)
    if smear:
        energy = log_normal_smear(rng, energy, hcal_resolution_gev(energy))
    keep = (energy >= HCAL_ENERGY_MIN_GEV) & (
        energy >= hcal_significance_min * hcal_resolution_gev(energy))
    towers, et_per_pixel = towers[keep], energy[keep] / np.cosh(tower_eta[keep]) / TOWER_PIXELS**2
    offsets = np.arange(TOWER_PIXELS)
    rows = ((towers // N_TOWER_ETA) % N_TOWER_PHI)[:, None, None] * TOWER_PIXELS + offsets[None, :, None]
    cols = (towers % N_TOWER_ETA)[:, None, None] * TOWER_PIXELS - TOWER_ETA_PAD + offsets[None, None, :]
    tower_event = (towers // (N_TOWER_ETA * N_TOWER_PHI))[:, None, None]
    inside = np.broadcast_to((cols >= 0) & (cols < N_ETA), (towers.size, TOWER_PIXELS, TOWER_PIXELS))
    pixels = _pixel_index(tower_event, rows, cols)
    values = np.broadcast_to(et_per_pixel[:, None, None], pixels.shape)
    flat[pixels[inside] * N_CHANNELS + HCAL] = values[inside]
    return images, n_tracks


def _pixel_index(event: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
    """Flat index of (event, row, column) in an (n, 360, 286) grid."""
    return (np.asarray(event, dtype=np.int64) * N_PHI + row) * N_ETA + column


def _sum_by_cell(cells: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupied cells (sorted, unique) and the sum of ``values`` in each."""
    occupied, inverse = np.unique(cells, return_inverse=True)
    return occupied, np.bincount(inverse.ravel(), weights=values, minlength=occupied.size)
