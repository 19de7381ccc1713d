"""Pythia 8 generation of QCD, SUEP and SVJ events, imaged by the CMS-like :mod:`.detector`.

The paper's samples (CoDAE paper §1.2, §3) come from Pythia 8 + Delphes with the CMS Run-2 card;
they are private. This module makes the same kind of sample from a real event generator: Pythia 8
(PyPI ``pythia8mc``, the optional extra ``tfphys[pythia]``, pinned to 8.317.2 which has a binary
wheel) produces the final-state particles of each event and the numpy detector of
:mod:`tfphys.darkshowers.detector` — the one the built-in toy simulator uses, following the
Delphes CMS card — turns them into the 360 φ × 286 η × 3 images of :mod:`tfphys.darkshowers.format`.
Files written here are read by every model, pipeline and ``tfphys-eval`` unchanged.

Processes (√s = 13 TeV, Pythia's default Monash tune, MPI and hadronisation on):

``qcd`` (label 0) — ``HardQCD:all = on`` in **p̂_T slices**, as analyses build QCD:
    ``pt_hat_slices_gev`` (default 15, 30, 50, 80, 120, 170, 250, 350, 500, 700, 1000, 1400,
    2000 GeV; slice i is ``PhaseSpace:pTHatMin/Max`` = [edge_i, edge_i+1), the last one open),
    one initialised Pythia per slice. The slices are mixed into one **unweighted** file: each
    generated event is drawn from slice i with probability f_i, with ``slice_weighting``

    * ``"xsec"`` — f_i = σ_i/Σσ, σ_i = Pythia's ``info.sigmaGen()`` of a process-level pilot
      (:func:`slice_cross_sections`, 20 000 events per slice, ≈ 0.5 %): the physical p̂_T
      spectrum, restricted to the events that pass the preselection (an accept–reject, so the
      file needs no weights dataset and every reader handles it). The σ_i are stored in the
      file's ``qcd_slice_sigma_mb`` attribute.
    * ``"equal"`` (**default**) — f_i = 1/K: a stitched sample, flat in slice index (≈ flat in
      log p̂_T from 15 GeV to ~3 TeV), the way many ML QCD sets are assembled from p̂_T bins.

    Why ``"equal"`` is the default: of the mixtures measured, it comes closest to the paper's Table 1 baselines
    (``tools/calibrate_baselines.py``, ``tools/README.md``). The paper's total-energy (Trk) AUROCs
    rise slowly with mass (SUEP 45 → 71 % from 125 GeV to 1 TeV, SVJ 56 → 81 % from 2.1 to
    4.1 TeV) although the signals' tracker Σp_T grows ~8× and ~2×: its QCD must span more than a
    decade in Σp_T. The physical spectrum, with or without an L1 preselection, is steep and sits
    at its lower edge: it gives 95–100 % for SUEP ≥ 400 GeV and every SVJ point (measured);
    the stitched sample gives the SVJ rows and the high-mass SUEP within ±5 points (10 of the
    22 Table 1 entries in all, against 6 for "xsec" and 9 for "xsec" with H_T ≥ 400 GeV). It
    does not reproduce the low-mass SUEP entries (ours are 6–24 points low; tools/README.md).
    ``pt_hat_min_gev`` given alone (``--pt-hat-min``) asks for one unsliced sample above it, the
    pre-issue-18 behaviour (then 100 GeV).
``svj`` (label 2, m_Z' ∈ 2100, 3100, 4100 GeV) — Hidden Valley ``ffbar2Zv``: a narrow Z' (4900023)
    decaying to dark quarks 98.2 % of the time (0.3 % to each SM quark pair), with the CMS SVJ
    benchmark dark sector of REFERENCE.md: N_c = 2, n_f = 2, dark quark mass m_dark/2, dark mesons
    4900111/4900211 (pseudoscalar) and 4900113/4900213 (vector) at ``m_dark_gev`` (20),
    ``probVector = 0.75``, running coupling with Λ = 3.2·m_dark^0.8 (the "peak" α) —
    **with ``HiddenValley:setLambda = on``**, without which Pythia ≥ 8.309 ignores Λ and the
    showers are half as busy — and an IR cut-off ``pTminFSR = 1.1 Λ``. Each dark meson decays
    invisibly (to the stand-ins 51 / 53) with branching ratio ``r_inv`` (0.3); otherwise to a SM
    quark pair that Pythia hadronises (meMode 91): pseudoscalars weighted by m_q² ("mass insertion"),
    vectors democratically, over the quarks with 2 m_q < m_dark (PDG masses at their own scale,
    not run to m_dark). The other HV partners are decoupled at 50 TeV.
``suep`` (label 1, m_H ∈ 125 … 1000 GeV) — ``HiggsSM:gg2H = on`` with ``25:m0 = m_H`` (a forced
    0.01 GeV width for m_H ≠ 125). Pythia has no SUEP model, so the scalar's decay is replaced
    in a :class:`SuepHook` (a ``pythia8mc.UserHooks`` acting in ``doVetoProcessLevel``): the SM
    decay is undone and the scalar becomes dark mesons (id 999999, mass ``meson_mass_gev`` = 2)
    with Knapen's Boltzmann recipe (:func:`tfphys.darkshowers.toy.suep_meson_momenta`,
    temperature ``temperature_gev`` = 2), boosted with the scalar. The mesons are handed back to
    Pythia, which showers the rest of the event and decays them: φ → A'A' (999998, mass
    ``dark_photon_mass_gev`` = 0.7), A' → e⁺e⁻ / μ⁺μ⁻ / π⁺π⁻ with ``dark_photon_decay``
    (default ``"generic"`` = 15 / 15 / 70 %), then everything hadronises and decays as usual.

Final-state particles → detector kinds: e± ELECTRON, μ± MUON, γ PHOTON (π⁰ → γγ decays in Pythia),
other charged particles CHARGED_HADRON, other visible neutral ones NEUTRAL_HADRON, and everything
Pythia calls invisible (neutrinos, the dark stand-ins 51/53) INVISIBLE — no deposits from muons in
the calorimeters and nothing from neutrinos (:mod:`.detector`). The true charge sign bends
tracks in the field. ``n_tracks`` counts reconstructed tracks (see
:func:`~tfphys.darkshowers.detector.images_from_particles`).

**Preselection** (off by default), applied to every process alike: ``l1_ht_min_gev`` and/or
``l1_jet_min_gev`` keep only events whose L1-like H_T / leading jet E_T (:class:`L1Proxy`:
Pythia's C++ ``CellJet`` cones of R = 0.4 on a 0.1 × 11.25° grid of the visible particles with
|η| < 2.5; H_T sums jets above 30 GeV, like CMS's L1 HTT) reach the threshold; rejected events
cost their Pythia time only (no detector, no pile-up). Off by default: with "xsec" slices from
120 GeV and H_T ≥ 400 GeV the nTracks row agrees with Table 1 (9 of 11 entries within ±5,
SUEP(125) 83 % against 79 %) but every total-energy entry is 18–44 points high (the signal events
that pass are harder than the QCD at threshold), and it keeps 3–12 % of SUEP(125–400): 3–16 kept
events per CPU-second instead of ~80 (tools/README.md). With the default stitched QCD it cuts the
soft QCD that the low-mass SUEP entries need.

**Pile-up** is off by default (it does not touch the tracker channel or ``n_tracks``, which are
what the CoDAE and the Table 1 entries use, and costs ~7× the CPU time).
``pileup_mu = μ > 0`` overlays Poisson(μ) non-diffractive minimum-bias events
(``SoftQCD:nonDiffractive``) from a second Pythia instance on every event (no
vertex spread; ~3 ms of CPU per overlaid event), so μ counts non-diffractive interactions.
Diffractive events (~30 % of the inelastic cross section, mostly forward) are left out: their
set-up costs ~6 s per Pythia instance. As after Delphes's ``TrackPileUpSubtractor`` (charged-hadron
subtraction), pile-up particles leave no track — the tracker channel and ``n_tracks`` see the hard
event only — but deposit in ECAL and HCAL. Measured: μ = 30 lowers the zero-pixel fraction of QCD
images from 99.86 % to 99.51 % (paper §3: ~99.4 %), see ``tools/README.md``.

Seeds and reproducibility: every chunk of events gets a child of ``SeedSequence(seed)``, from
which come Pythia's ``Random:seed`` (re-initialised per chunk with ``rndm.init``), the SUEP meson
generator's numpy stream and the detector's stream — so a chunk's events depend only on (seed,
chunk index), not on which worker made it or which chunks came before: workers never share a
stream and a run is the same with any ``workers``.

Chunked writes and resuming: :func:`generate` writes chunks in order (a pool of ``workers``
processes computes ahead), each flushed to disk. The request (process, mass, n, seed and every
physics setting) is stored in the file's ``request`` attribute. The file is written as ``OUT.part``
and renamed to ``OUT`` when complete; rerunning the same command — or adding ``resume=True`` —
after an interruption keeps the complete chunks of ``OUT.part`` and generates only the rest,
giving the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from tfphys.atomic import partial_path
from tfphys.darkshowers import detector, toy
from tfphys.darkshowers import format as formats
from tfphys.darkshowers.detector import CHARGED_HADRON, ELECTRON, INVISIBLE, MUON, NEUTRAL_HADRON, PHOTON
from tfphys.errors import TfphysError

PYTHIA_VERSION = "8.317.2"
PROCESSES = toy.PROCESSES
LABELS = toy.LABELS
MASSES_GEV = toy.MASSES_GEV
SQRT_S_GEV = 13000.0
CHUNK_EVENTS = 64  # 64 × 1.24 MB of images per worker; a SUEP(1 TeV) chunk takes a few seconds

#: Dark-photon decay modes: (e⁺e⁻, μ⁺μ⁻, π⁺π⁻) branching ratios.
DARK_PHOTON_DECAYS = {
    "generic": (0.15, 0.15, 0.70),  # REFERENCE: m_A' = 0.7 GeV
    "leptonic": (0.5, 0.5, 0.0),
    "electrons": (1.0, 0.0, 0.0),
    "muons": (0.0, 1.0, 0.0),
    "pions": (0.0, 0.0, 1.0),
}

#: Default QCD p̂_T slice edges (GeV): slice i is [edge_i, edge_i+1), the last one is open.
QCD_SLICES_GEV = (15.0, 30.0, 50.0, 80.0, 120.0, 170.0, 250.0, 350.0, 500.0, 700.0, 1000.0, 1400.0, 2000.0)
#: How p̂_T slices are mixed into one unweighted QCD sample: the probability of drawing each
#: generated event from slice i is ∝ its cross-section σ_i ("xsec": the physical spectrum) or the
#: same for every slice ("equal": a stitched sample, flat in slice index).
SLICE_WEIGHTINGS = ("xsec", "equal")
#: L1-like jets (:class:`L1Proxy`): Pythia's CellJet on the visible final state, |η| < 2.5,
#: 50 × 32 cells (0.1 × 11.25°), cone R = 0.4; H_T sums jets with E_T > 30 GeV (CMS L1 HTT).
L1_ETA_MAX, L1_CELLS, L1_CONE_R, L1_SEED_GEV, L1_HT_JET_MIN_GEV = 2.5, (50, 32), 0.4, 1.5, 30.0
#: Process-level events per slice of the cross-section pilot (0.2 s each; σ to ≈ 0.5 %).
SIGMA_PILOT_EVENTS = 20000
#: A preselection that rejects this many generated events in a row is an error (see next_event).
PRESELECTION_MAX_TRIES = 20000

#: Every physics knob and its default (each process uses the ones it needs).
DEFAULT_PHYSICS = {
    "pt_hat_min_gev": 100.0,        # QCD: PhaseSpace:pTHatMin
    "m_dark_gev": 20.0,             # SVJ: dark meson mass (dark quark m_dark/2)
    "r_inv": 0.3,                   # SVJ: invisible fraction of dark-meson decays
    "meson_mass_gev": 2.0,          # SUEP: m_φ
    "temperature_gev": 2.0,         # SUEP: Boltzmann temperature T
    "dark_photon_mass_gev": 0.7,    # SUEP: m_A'
    "dark_photon_decay": "generic",  # SUEP: a DARK_PHOTON_DECAYS name or (ee, μμ, ππ) fractions
    "pileup_mu": 0.0,               # mean pile-up interactions overlaid (0 = off)
    "pythia_settings": (),          # extra Pythia lines, read last (e.g. "Tune:pp = 14")
    "pt_hat_slices_gev": QCD_SLICES_GEV,  # QCD: p̂_T slice edges (last slice open); () = one sample
    "slice_weighting": "equal",     # QCD: how slices are mixed, a SLICE_WEIGHTINGS name
    "l1_ht_min_gev": 0.0,           # preselection: L1-like H_T ≥ this (0 = off), every process
    "l1_jet_min_gev": 0.0,          # preselection: L1-like leading jet E_T ≥ this (0 = off)
}

SUEP_MESON_ID = 999999
DARK_PHOTON_ID = 999998
ZPRIME_ID = 4900023
DARK_QUARK_ID = 4900101
ELECTRON_MASS_GEV, MUON_MASS_GEV, PION_MASS_GEV = 0.000511, 0.105658, 0.139570
#: (PDG id, mass) of the quarks a dark meson may decay to (PDG masses, GeV).
QUARKS = ((1, 0.0048), (2, 0.0023), (3, 0.095), (4, 1.275), (5, 4.18))
HV_DECOUPLED_GEV = 50000.0


def available() -> bool:
    """Whether ``pythia8mc`` can be imported."""
    try:
        import pythia8mc  # noqa: F401
    except ImportError:
        return False
    return True


def _pythia8mc():
    try:
        import pythia8mc
    except ImportError:
        raise TfphysError("the pythia generator needs Pythia 8: pip install 'tfphys[pythia]' "
                          f"(pythia8mc=={PYTHIA_VERSION})") from None
    return pythia8mc


# --- settings -----------------------------------------------------------------------------------


def physics_config(overrides: dict | None = None) -> dict:
    """Defaults updated with ``overrides``, checked; raises TfphysError naming a bad value."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_PHYSICS))
    if unknown:
        raise TfphysError(f"unknown Pythia physics setting(s) {unknown}; expected some of "
                          f"{sorted(DEFAULT_PHYSICS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "pt_hat_min_gev" in given and "pt_hat_slices_gev" not in given:
        given["pt_hat_slices_gev"] = ()  # an explicit p̂_T cut asks for one sample above it
    cfg = {**DEFAULT_PHYSICS, **given}
    for key in ("pt_hat_min_gev", "m_dark_gev", "meson_mass_gev", "temperature_gev",
                "dark_photon_mass_gev"):
        cfg[key] = float(cfg[key])
        if not cfg[key] > 0:
            raise TfphysError(f"{key} must be > 0, got {cfg[key]:g}")
    cfg["r_inv"] = float(cfg["r_inv"])
    if not 0.0 <= cfg["r_inv"] <= 1.0:
        raise TfphysError(f"r_inv must be a fraction in [0, 1], got {cfg['r_inv']:g}")
    cfg["pileup_mu"] = float(cfg["pileup_mu"])
    if not cfg["pileup_mu"] >= 0:
        raise TfphysError(f"pileup_mu must be ≥ 0, got {cfg['pileup_mu']:g}")
    cfg["dark_photon_decay"] = _branchings_name(cfg["dark_photon_decay"])
    cfg["pythia_settings"] = tuple(str(s) for s in cfg["pythia_settings"])
    edges = cfg["pt_hat_slices_gev"]
    if isinstance(edges, str):
        edges = [x for x in edges.replace(" ", "").split(",") if x]
    try:
        edges = tuple(float(x) for x in edges)
    except (TypeError, ValueError):
        raise TfphysError(f"pt_hat_slices_gev must be increasing p̂_T edges in GeV (e.g. 30,50,80), "
                          f"got {cfg['pt_hat_slices_gev']!r}") from None
    if edges and not (edges[0] > 0 and all(b > a for a, b in zip(edges, edges[1:]))):
        raise TfphysError(f"pt_hat_slices_gev must be positive and increasing, got {list(edges)}")
    cfg["pt_hat_slices_gev"] = edges
    if cfg["slice_weighting"] not in SLICE_WEIGHTINGS:
        raise TfphysError(f"slice_weighting must be one of {', '.join(SLICE_WEIGHTINGS)}, "
                          f"got {cfg['slice_weighting']!r}")
    for key in ("l1_ht_min_gev", "l1_jet_min_gev"):
        cfg[key] = float(cfg[key])
        if not cfg[key] >= 0:
            raise TfphysError(f"{key} must be ≥ 0 (0: no preselection), got {cfg[key]:g}")
    if not any(2.0 * m < cfg["m_dark_gev"] for _, m in QUARKS) and cfg["r_inv"] < 1.0:
        raise TfphysError(f"m_dark = {cfg['m_dark_gev']:g} GeV is below every quark pair threshold: "
                          "dark mesons could only decay invisibly; use r_inv = 1 or a larger m_dark")
    return cfg


def _branchings_name(mode) -> str:
    """Normalise a dark-photon decay mode to a name of DARK_PHOTON_DECAYS or 'ee,mumu,pipi' text."""
    if isinstance(mode, str) and mode in DARK_PHOTON_DECAYS:
        return mode
    try:
        values = [float(x) for x in (mode.split(",") if isinstance(mode, str) else mode)]
    except (TypeError, ValueError):
        values = []
    if len(values) != 3 or min(values) < 0 or not np.isclose(sum(values), 1.0):
        raise TfphysError(f"dark-photon decay mode {mode!r}: expected one of "
                          f"{', '.join(DARK_PHOTON_DECAYS)} or three branching ratios e,mu,pi summing "
                          "to 1 (e.g. 0.15,0.15,0.7)")
    return ",".join(f"{v:g}" for v in values)


def dark_photon_branchings(mode: str) -> tuple[float, float, float]:
    """(e⁺e⁻, μ⁺μ⁻, π⁺π⁻) branching ratios of a dark-photon decay mode."""
    mode = _branchings_name(mode)
    if mode in DARK_PHOTON_DECAYS:
        return DARK_PHOTON_DECAYS[mode]
    return tuple(float(x) for x in mode.split(","))


def hv_lambda_gev(m_dark_gev: float) -> float:
    """Dark confinement scale of the CMS SVJ benchmark ("peak" α): Λ = 3.2·m_dark^0.8 GeV."""
    return 3.2 * m_dark_gev**0.8


def qcd_slices(physics: dict | None = None) -> list[tuple[float, float | None]]:
    """The QCD p̂_T slices ``(low, high)`` in GeV (``high`` None: open) of a physics config; one
    slice ``(pt_hat_min_gev, None)`` when ``pt_hat_slices_gev`` is empty."""
    cfg = physics_config(physics)
    edges = cfg["pt_hat_slices_gev"]
    if not edges:
        return [(cfg["pt_hat_min_gev"], None)]
    return list(zip(edges, (*edges[1:], None)))


def settings(process: str, mass_gev: float | None, physics: dict | None = None,
             slice_index: int = 0) -> list[str]:
    """The Pythia lines of one process and mass point (module docstring), without seeds; for QCD
    those of p̂_T slice ``slice_index`` of :func:`qcd_slices`."""
    cfg = physics_config(physics)
    _check_process_mass(process, mass_gev)
    lines = [f"Beams:eCM = {SQRT_S_GEV:g}", "Print:quiet = on", "Next:numberCount = 0",
             "Next:numberShowEvent = 0", "Next:numberShowProcess = 0", "Next:numberShowInfo = 0"]
    if process == "qcd":
        low, high = qcd_slices(cfg)[slice_index]
        lines += ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {low:g}"]
        if high is not None:
            lines.append(f"PhaseSpace:pTHatMax = {high:g}")
    elif process == "svj":
        lines += _svj_settings(float(mass_gev), cfg)
    else:
        lines += _suep_settings(float(mass_gev), cfg)
    return lines + list(cfg["pythia_settings"])


def _svj_settings(mass, cfg):
    m_dark, r_inv = cfg["m_dark_gev"], cfg["r_inv"]
    lam = hv_lambda_gev(m_dark)
    lines = [
        "HiddenValley:ffbar2Zv = on",
        f"{ZPRIME_ID}:m0 = {mass:g}", f"{ZPRIME_ID}:mMin = {mass - 1:g}",
        f"{ZPRIME_ID}:mMax = {mass + 1:g}", f"{ZPRIME_ID}:mWidth = 0.01",
        f"{ZPRIME_ID}:oneChannel = 1 0.982 102 {DARK_QUARK_ID} -{DARK_QUARK_ID}",
        *(f"{ZPRIME_ID}:addChannel = 1 0.003 102 {q} -{q}" for q in range(1, 7)),
        f"{DARK_QUARK_ID}:m0 = {m_dark / 2:g}",
        *(f"{i}:m0 = {m_dark:g}" for i in (4900111, 4900211, 4900113, 4900213)),
        "51:m0 = 0.0", "51:isResonance = false", "53:m0 = 0.0", "53:isResonance = false",
        "HiddenValley:Ngauge = 2", "HiddenValley:nFlav = 2", "HiddenValley:spinFv = 0",
        "HiddenValley:FSR = on", "HiddenValley:fragment = on", "HiddenValley:alphaOrder = 1",
        "HiddenValley:setLambda = on",  # Pythia ≥ 8.309 ignores Lambda without it
        f"HiddenValley:Lambda = {lam:.6g}", f"HiddenValley:pTminFSR = {1.1 * lam:.6g}",
        "HiddenValley:probVector = 0.75",
        *(f"{i}:m0 = {HV_DECOUPLED_GEV:g}" for i in (*range(4900001, 4900007), *range(4900011, 4900017))),
    ]
    open_quarks = [(q, m) for q, m in QUARKS if 2.0 * m < m_dark]
    mass_sq = sum(m**2 for _, m in open_quarks)
    for meson, stand_in, vector in ((4900111, 51, False), (4900211, 51, False),
                                    (4900113, 53, True), (4900213, 53, True)):
        lines.append(f"{meson}:oneChannel = 1 {r_inv:.6g} 0 {stand_in} -{stand_in}")
        for q, m in open_quarks:
            weight = 1.0 / len(open_quarks) if vector else m**2 / mass_sq
            if (1.0 - r_inv) * weight > 0:
                lines.append(f"{meson}:addChannel = 1 {(1.0 - r_inv) * weight:.6g} 91 {q} -{q}")
    return lines


def _suep_settings(mass, cfg):
    m_phi, m_a = cfg["meson_mass_gev"], cfg["dark_photon_mass_gev"]
    if not mass > 2.0 * m_phi:
        raise TfphysError(f"m_H = {mass:g} GeV cannot decay to dark mesons of m_φ = {m_phi:g} GeV")
    if not m_phi > 2.0 * m_a:
        raise TfphysError(f"dark mesons of m_φ = {m_phi:g} GeV cannot decay to dark photons of "
                          f"m_A' = {m_a:g} GeV (need m_φ > 2 m_A')")
    branchings = dark_photon_branchings(cfg["dark_photon_decay"])
    channels = [(11, ELECTRON_MASS_GEV), (13, MUON_MASS_GEV), (211, PION_MASS_GEV)]
    for (pid, m), br in zip(channels, branchings):
        if br > 0 and not m_a > 2.0 * m:
            raise TfphysError(f"dark photons of m_A' = {m_a:g} GeV cannot decay to {pid} pairs "
                              f"(threshold {2 * m:.3g} GeV); choose another dark_photon_decay")
    lines = ["HiggsSM:gg2H = on", f"25:m0 = {mass:g}"]
    if mass != 125.0:
        lines += ["25:doForceWidth = on", "25:mWidth = 0.01", f"25:mMin = {mass - 1:g}",
                  f"25:mMax = {mass + 1:g}"]
    lines += [
        # id:all = name antiName spinType chargeType colType m0 mWidth mMin mMax tau0
        f"{SUEP_MESON_ID}:all = suepMeson void 1 0 0 {m_phi:g} 0 0 0 0",
        f"{SUEP_MESON_ID}:isResonance = false", f"{SUEP_MESON_ID}:mayDecay = on",
        f"{SUEP_MESON_ID}:oneChannel = 1 1.0 0 {DARK_PHOTON_ID} {DARK_PHOTON_ID}",
        f"{DARK_PHOTON_ID}:all = darkPhoton void 3 0 0 {m_a:g} 0 0 0 0",
        f"{DARK_PHOTON_ID}:isResonance = false", f"{DARK_PHOTON_ID}:mayDecay = on",
    ]
    first = True
    for (pid, _), br in zip(channels, branchings):
        if br > 0:
            lines.append(f"{DARK_PHOTON_ID}:{'oneChannel' if first else 'addChannel'} = "
                         f"1 {br:.6g} 0 {pid} -{pid}")
            first = False
    return lines


def _check_process_mass(process, mass_gev):
    if process not in PROCESSES:
        raise TfphysError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}")
    if process == "qcd":
        if mass_gev not in (None, 0, 0.0):
            raise TfphysError(f"QCD has no mediator mass; got --mass {float(mass_gev):g}")
        return
    allowed = ", ".join(f"{m:g}" for m in MASSES_GEV[process])
    if mass_gev is None:
        raise TfphysError(f"{process} needs a mass point; expected one of {allowed} GeV")
    if float(mass_gev) not in MASSES_GEV[process]:
        raise TfphysError(f"mass {float(mass_gev):g} GeV is not a {process} mass point; "
                          f"expected one of {allowed}")


@contextlib.contextmanager
def _captured_stdout(sink: list):
    """Collect what C++ code writes to descriptor 1 (Pythia's error notes) into ``sink``."""
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            captured.seek(0)
            sink.append(captured.read().decode(errors="replace"))


# --- the SUEP hook ------------------------------------------------------------------------------


def _hook_base():
    return _pythia8mc().UserHooks


class SuepHook:
    """Factory of the ``pythia8mc.UserHooks`` subclass that replaces the scalar's decay by a SUEP.

    ``SuepHook.create(meson_mass_gev, temperature_gev)`` returns the hook (the class is built on
    first use so that importing this module does not need Pythia). In ``doVetoProcessLevel`` it
    finds the last scalar (id 25) of the process record, undoes its decay, draws dark mesons in
    its rest frame (:func:`toy.suep_meson_momenta`: Boltzmann momenta, Σp = 0, ΣE = m_H exactly),
    boosts them with the scalar (:func:`toy.boost`) and appends them as its daughters (status 91),
    never vetoing. ``hook.rng`` is the numpy generator (re-seeded per chunk);
    ``hook.n_mesons`` lists the mesons per event.
    """

    _class = None

    @classmethod
    def create(cls, meson_mass_gev: float, temperature_gev: float):
        if cls._class is None:
            cls._class = _make_hook_class(_hook_base())
        return cls._class(meson_mass_gev, temperature_gev)


def _make_hook_class(base):
    class _SuepHook(base):
        def __init__(self, meson_mass_gev, temperature_gev):
            super().__init__()
            self.meson_mass_gev = float(meson_mass_gev)
            self.temperature_gev = float(temperature_gev)
            self.rng = np.random.default_rng(0)
            self.n_mesons = []

        def canVetoProcessLevel(self):
            return True

        def doVetoProcessLevel(self, event):
            scalars = [i for i in range(event.size()) if event[i].id() == 25]
            if not scalars:
                return False
            i_h = scalars[-1]
            event[i_h].undoDecay()
            h = event[i_h]
            mass = h.m()
            _, rest = toy.suep_meson_momenta(self.rng, np.array([mass]),
                                             meson_mass_gev=self.meson_mass_gev,
                                             temperature_gev=self.temperature_gev)
            parent = np.array([[h.e(), h.px(), h.py(), h.pz()]])
            lab = toy.boost(rest, np.repeat(parent, len(rest), axis=0), mass)
            first = event.size()
            for e, px, py, pz in lab:
                event.append(SUEP_MESON_ID, 91, i_h, 0, 0, 0, 0, 0, px, py, pz, e, self.meson_mass_gev)
            h = event[i_h]
            h.statusNeg()
            h.daughters(first, event.size() - 1)
            self.n_mesons.append(len(lab))
            return False

    return _SuepHook


# --- QCD slices and the preselection -------------------------------------------------------------


def slice_cross_sections(physics: dict | None = None, pilot_events: int = SIGMA_PILOT_EVENTS,
                         seed: int = 1) -> list[float]:
    """σ_i (mb) of every QCD p̂_T slice of a physics config: Pythia's ``info.sigmaGen()`` after
    ``pilot_events`` process-level events (no shower, MPI or hadronisation: ~10 µs each; the hard
    cross-section is unchanged by what follows). Deterministic for a given ``seed``; the relative
    error is ``sigmaErr/sigmaGen`` ≈ 0.5 % at 20 000 events."""
    pythia8mc = _pythia8mc()
    cfg = physics_config(physics)
    sigmas = []
    for k in range(len(qcd_slices(cfg))):
        lines = settings("qcd", None, cfg, k) + [
            "PartonLevel:all = off", "HadronLevel:all = off", "Random:setSeed = on", f"Random:seed = {seed}"]
        pythia = _init_pythia(pythia8mc, lines, None)
        for _ in range(int(pilot_events)):
            pythia.next()
        sigmas.append(float(pythia.infoPython().sigmaGen()))
    return sigmas


class L1Proxy:
    """L1-like trigger quantities of a Pythia event, computed on the hard event (pile-up is
    overlaid after, as if L1 jets were pile-up subtracted): Pythia's ``CellJet`` cone jets on the
    visible final-state particles over a coarse η–φ grid (constants ``L1_*``), the scalar sum
    H_T of the jets with E_T > 30 GeV and the leading jet's E_T. ``proxy(event)`` → ``(H_T, E_T)``
    in GeV; ~0.06 ms per event in C++."""

    def __init__(self, pythia8mc):
        self._jets = pythia8mc.CellJet(L1_ETA_MAX, L1_CELLS[0], L1_CELLS[1], 2)  # 2: visible final

    def __call__(self, event) -> tuple[float, float]:
        jets = self._jets
        jets.analyze(event, 10.0, L1_CONE_R, L1_SEED_GEV)
        et = [jets.eT(j) for j in range(jets.size())]
        return float(sum(e for e in et if e > L1_HT_JET_MIN_GEV)), float(max(et, default=0.0))


# --- one generator = one initialised Pythia ---------------------------------------------------


class PythiaGenerator:
    """An initialised Pythia for one (process, mass point, physics) and its chunk loop.

    ``chunk(n, seed)`` returns the events of one chunk in the :mod:`formats` layout; it re-seeds
    Pythia (``rndm.init``), the SUEP hook and the detector from children of ``seed``.
    """

    def __init__(self, process: str, mass_gev: float | None = None, physics: dict | None = None,
                 cross_sections: list[float] | None = None):
        pythia8mc = _pythia8mc()
        self.process = process
        self.mass_gev = 0.0 if process == "qcd" else mass_gev
        self.cfg = physics_config(physics)
        n_slices = len(qcd_slices(self.cfg)) if process == "qcd" else 1
        hook = self._hook_for(process)
        #: One initialised Pythia per QCD p̂_T slice (one for a signal); ``pythia`` is the first.
        self.pythias = [
            _init_pythia(pythia8mc, settings(process, mass_gev, self.cfg, k)
                         + ["Random:setSeed = on", "Random:seed = 1"], hook)
            for k in range(n_slices)]
        self.pythia = self.pythias[0]
        #: σ_i of the slices in mb (:func:`slice_cross_sections`; None for "equal" weighting) and the
        #: probability of drawing a generated event from each slice.
        self.cross_sections, self.slice_fractions = None, np.ones(1)
        if n_slices > 1:
            if self.cfg["slice_weighting"] == "xsec":
                self.cross_sections = (list(map(float, cross_sections)) if cross_sections is not None
                                       else slice_cross_sections(self.cfg))
                if len(self.cross_sections) != n_slices:
                    raise TfphysError(f"{len(self.cross_sections)} cross-sections for {n_slices} slices")
                self.slice_fractions = np.asarray(self.cross_sections) / np.sum(self.cross_sections)
            else:
                self.slice_fractions = np.full(n_slices, 1.0 / n_slices)
        #: Generated and preselected events per slice, summed over this generator's chunks.
        self.tried, self.kept = np.zeros(n_slices, np.int64), np.zeros(n_slices, np.int64)
        self.l1 = L1Proxy(pythia8mc)
        self._pileup = None
        if self.cfg["pileup_mu"] > 0:
            self._pileup = _init_pythia(pythia8mc, [
                f"Beams:eCM = {SQRT_S_GEV:g}", "Print:quiet = on", "Next:numberCount = 0",
                "SoftQCD:nonDiffractive = on", "Random:setSeed = on", "Random:seed = 2"], None)
        self._data = self.pythia.particleData
        self._charge, self._visible = {}, {}
        self._choice_rng = np.random.default_rng(0)

    def _hook_for(self, process):
        # self.hook keeps the Python hook alive for as long as Pythia holds a pointer to it.
        if process != "suep":
            self.hook = None
            return None
        self.hook = SuepHook.create(self.cfg["meson_mass_gev"], self.cfg["temperature_gev"])
        return self.hook

    def passes(self, l1_ht_gev: float, l1_jet_gev: float) -> bool:
        """The preselection: H_T ≥ ``l1_ht_min_gev`` and leading jet ≥ ``l1_jet_min_gev`` (each
        only when > 0); every event passes when both are 0."""
        return l1_ht_gev >= self.cfg["l1_ht_min_gev"] and l1_jet_gev >= self.cfg["l1_jet_min_gev"]

    def reseed(self, pythia_seed: np.random.SeedSequence) -> None:
        """Re-seed Pythia (every slice's) and the slice draws from one SeedSequence."""
        if len(self.pythias) == 1:
            self.pythia.rndm.init(_pythia_seed(pythia_seed))  # as before slicing: same events
            return
        choice_seed, *slice_seeds = _copy(pythia_seed).spawn(len(self.pythias) + 1)
        self._choice_rng = np.random.default_rng(choice_seed)
        for pythia, s in zip(self.pythias, slice_seeds):
            pythia.rndm.init(_pythia_seed(s))

    def next_event(self) -> tuple[int, float, float]:
        """Generate until an event passes the preselection; ``(slice, l1_ht, l1_jet)`` of it, the
        event in ``self.pythias[slice].event``. Each try draws its slice with ``slice_fractions``,
        so the kept events are an unweighted sample of the mixture, preselected."""
        failures = rejected = 0
        while True:
            k = (0 if len(self.pythias) == 1 else
                 int(self._choice_rng.choice(len(self.pythias), p=self.slice_fractions)))
            pythia = self.pythias[k]
            if not pythia.next():
                failures += 1
                if failures > 20:
                    raise TfphysError(f"Pythia failed {failures} times in a row generating {self.process} "
                                      "events; check the settings")
                continue
            self.tried[k] += 1
            ht, jet = self.l1(pythia.event)
            if self.passes(ht, jet):
                self.kept[k] += 1
                return k, ht, jet
            rejected += 1
            if rejected >= PRESELECTION_MAX_TRIES:
                raise TfphysError(
                    f"the preselection (l1_ht_min_gev {self.cfg['l1_ht_min_gev']:g}, l1_jet_min_gev "
                    f"{self.cfg['l1_jet_min_gev']:g}) kept none of {rejected} {self.process} events "
                    "in a row; lower it")

    def chunk(self, n: int, seed: np.random.SeedSequence, *, truth: bool = False) -> dict:
        """``n`` preselected events: images, label, mass, n_tracks (+ truth ``met_gev``,
        ``n_charged``, ``visible_energy_gev``, ``l1_ht_gev``, ``l1_jet_gev``, ``pt_hat_gev`` and
        the QCD ``slice`` if asked)."""
        pythia_seed, hook_seed, detector_seed, pileup_seed = _copy(seed).spawn(4)
        self.reseed(pythia_seed)
        if self.hook is not None:
            self.hook.rng = np.random.default_rng(hook_seed)
        pileup_rng = np.random.default_rng(pileup_seed)
        if self._pileup is not None:
            self._pileup.rndm.init(_pythia_seed(pileup_seed))
        parts, l1 = [], []
        while len(parts) < n:
            k, ht, jet = self.next_event()
            pythia = self.pythias[k]
            l1.append((ht, jet, pythia.infoPython().pTHat(), k))
            particles = [self._final_state(pythia.event, primary=True)]
            if self._pileup is not None:
                for _ in range(pileup_rng.poisson(self.cfg["pileup_mu"])):
                    while not self._pileup.next():
                        pass
                    particles.append(self._final_state(self._pileup.event, primary=False))
            parts.append(np.concatenate(particles))
        event = np.repeat(np.arange(n), [len(p) for p in parts])
        ids, px, py, pz, e, primary = np.concatenate(parts).T if n else np.zeros((6, 0))
        ids, primary = ids.astype(np.int64), primary.astype(bool)
        kind, charge = self._kinds(ids)
        pt = np.hypot(px, py)
        keep = pt > 0  # beam-collinear leftovers have no η
        event, ids, px, py, pz, e, pt, kind, charge, primary = (
            x[keep] for x in (event, ids, px, py, pz, e, pt, kind, charge, primary))
        eta = np.arcsinh(pz / pt)
        phi = detector.wrap_phi(np.arctan2(py, px))
        images, n_tracks = detector.images_from_particles(
            event, pt, eta, phi, kind, n_events=n, rng=np.random.default_rng(detector_seed),
            charge=charge, energy_gev=e, primary=None if self._pileup is None else primary)
        out = {"images": images, "label": np.full(n, LABELS[self.process], np.int8),
               "mass": np.full(n, self.mass_gev, np.float32), "n_tracks": n_tracks}
        if truth:  # of the hard event only
            invisible = (kind == INVISIBLE) & primary
            met_x = np.bincount(event[invisible], weights=px[invisible], minlength=n)
            met_y = np.bincount(event[invisible], weights=py[invisible], minlength=n)
            out["met_gev"] = np.hypot(met_x, met_y)
            charged = (charge != 0) & (pt > 0.1) & (np.abs(eta) < detector.TRACKER_ETA_MAX) & primary
            out["n_charged"] = np.bincount(event[charged], minlength=n)
            visible = (kind != INVISIBLE) & primary
            out["visible_energy_gev"] = np.bincount(event[visible], weights=e[visible], minlength=n)
            l1 = np.asarray(l1, np.float64).reshape(n, 4)
            out["l1_ht_gev"], out["l1_jet_gev"], out["pt_hat_gev"] = l1[:, 0], l1[:, 1], l1[:, 2]
            out["slice"] = l1[:, 3].astype(np.int64)
        return out

    @staticmethod
    def _final_state(event, primary: bool = True) -> np.ndarray:
        """(K, 6) rows (PDG id, p_x, p_y, p_z, E, primary) of the final-state particles."""
        flag = 1.0 if primary else 0.0
        rows = [(q.id(), q.px(), q.py(), q.pz(), q.e(), flag) for q in event if q.isFinal()]
        return np.array(rows, dtype=np.float64).reshape(-1, 6)

    def _kinds(self, ids):
        """Detector kinds and charges of PDG ids (cached per id)."""
        unique, inverse = np.unique(ids, return_inverse=True)
        for pid in unique.tolist():
            if pid not in self._charge:
                self._charge[pid] = self._data.charge(pid)
                self._visible[pid] = self._data.isVisible(pid)
        charge = np.array([self._charge[p] for p in unique.tolist()])[inverse]
        visible = np.array([self._visible[p] for p in unique.tolist()], dtype=bool)[inverse]
        absid = np.abs(ids)
        kind = np.select(
            [~visible, absid == 11, absid == 13, absid == 22, charge != 0],
            [INVISIBLE, ELECTRON, MUON, PHOTON, CHARGED_HADRON], NEUTRAL_HADRON)
        return kind.astype(np.int64), charge.astype(np.float64)


def _copy(seq: np.random.SeedSequence) -> np.random.SeedSequence:
    """A copy of ``seq``, so that spawning from it leaves the caller's sequence untouched."""
    return np.random.SeedSequence(seq.entropy, spawn_key=seq.spawn_key, pool_size=seq.pool_size,
                                  n_children_spawned=seq.n_children_spawned)


def _pythia_seed(seq: np.random.SeedSequence) -> int:
    """Pythia's seed (1 … 900 000 000) from a SeedSequence."""
    return int(seq.generate_state(1, np.uint64)[0] % 900_000_000) + 1


def check_settings(lines: list[str]):
    """A Pythia (not initialised) with ``lines`` read; TfphysError naming any line Pythia rejects
    (unknown key, meaningless or out-of-range value) with Pythia's own note."""
    pythia8mc = _pythia8mc()
    notes: list[str] = []
    with _captured_stdout(notes):
        pythia = pythia8mc.Pythia("", False)
        bad = [line for line in lines if not pythia.readString(line)]
    if bad:
        raise TfphysError(f"Pythia rejected setting(s) {bad}: {_first_note(notes)}")
    return pythia


def _init_pythia(pythia8mc, lines, hook):
    """Pythia with ``lines`` read and initialised; a bad line or a failed init is a TfphysError."""
    notes: list[str] = []
    pythia = check_settings(lines)
    if hook is not None:
        pythia.setUserHooksPtr(hook)
    with _captured_stdout(notes):
        ok = pythia.init()
    if not ok:
        raise TfphysError(f"Pythia failed to initialise: {_first_note(notes)}")
    return pythia


def _first_note(notes):
    text = " ".join(" ".join(notes).split())
    return text[:400] if text else "no message from Pythia"


# --- simulate / generate ------------------------------------------------------------------------


def simulate(process: str, n: int, *, mass_gev: float | None = None,
             seed: int | np.random.SeedSequence = 0, truth: bool = False, **physics) -> dict:
    """``n`` Pythia events of one process and mass point, imaged (like :func:`toy.simulate`).

    Returns ``images`` float32 (n, 360, 286, 3), ``label`` int8, ``mass`` float32 and ``n_tracks``
    int32 — with ``truth=True`` also ``met_gev`` (|Σ p_T| of invisible particles), ``n_charged``
    (charged particles with p_T > 0.1 GeV, |η| < 2.5) and ``visible_energy_gev``. The events are
    those of chunk 0 of ``generate(..., seed)`` when n ≤ CHUNK_EVENTS.
    """
    gen = PythiaGenerator(process, mass_gev, physics)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return gen.chunk(int(n), seq, truth=truth)


def plan(process: str, mass_gev: float | None, n: int, seed: int,
         chunk_events: int = CHUNK_EVENTS) -> list[tuple[str, float | None, int, np.random.SeedSequence]]:
    """The ordered chunks (process, mass, events, seed) of a request.

    ``process="all"`` is n QCD events plus n at every mass point; a signal without a mass cycles the
    chunks over its mass points. Chunk k of the whole request gets ``SeedSequence(seed)``'s k-th child.
    """
    if process == "all":
        pieces = [("qcd", None)] + [(p, m) for p in ("suep", "svj") for m in MASSES_GEV[p]]
    else:
        if process not in PROCESSES:
            raise TfphysError(f"unknown process {process!r}; expected one of {', '.join(PROCESSES)}, all")
        if process == "qcd" or mass_gev is not None:
            _check_process_mass(process, mass_gev)
        pieces = [(process, None if process == "qcd" else mass_gev)]
    sizes = [min(chunk_events, n - start) for start in range(0, n, chunk_events)]
    seeds = np.random.SeedSequence(seed).spawn(len(pieces) * len(sizes))
    chunks = []
    for k, (proc, mass) in enumerate(pieces):
        for j, size in enumerate(sizes):
            if proc != "qcd" and mass is None:
                m = MASSES_GEV[proc][j % len(MASSES_GEV[proc])]
            else:
                m = mass
            chunks.append((proc, m, size, seeds[k * len(sizes) + j]))
    return chunks


_WORKER: dict = {}  # (process, mass, physics) -> PythiaGenerator of this process; ~30 MB each
_WORKER_CACHE = 6  # enough for a signal whose chunks cycle over its mass points


def _run_chunk(task):
    """Worker: one chunk with a cached, initialised PythiaGenerator per component (~2 s to init)."""
    process, mass, size, seq, physics, *sigmas = task  # sigmas: the QCD slices' σ, if computed
    key = (process, mass, json.dumps(_jsonable(physics), sort_keys=True))
    if key not in _WORKER:
        if len(_WORKER) >= _WORKER_CACHE:
            _WORKER.pop(next(iter(_WORKER)))
        if sigmas and sigmas[0] is not None:
            _WORKER[key] = PythiaGenerator(process, mass, physics, cross_sections=sigmas[0])
        else:
            _WORKER[key] = PythiaGenerator(process, mass, physics)
    return _WORKER[key].chunk(size, seq)


def _jsonable(cfg):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def _request(process, mass_gev, n, seed, cfg, chunk_events):
    """The request a file holds, as stored in its ``request`` attribute (compared on resuming)."""
    return json.dumps({"process": process, "mass_gev": None if mass_gev is None else float(mass_gev),
                       "n": int(n), "seed": int(seed), "chunk_events": chunk_events,
                       "pythia": PYTHIA_VERSION, "physics": _jsonable(cfg)}, sort_keys=True)


def _resumable(out: Path, request: str, chunk_sizes: list[int]) -> int | None:
    """Events of complete chunks in an unfinished file of the same request, else None."""
    try:
        with h5py.File(out, "r") as f:
            if f.attrs.get("generator") != "pythia" or f.attrs.get("request") != request:
                return None
            if any(name not in f for name in formats.DARKSHOWERS_DATASETS):
                return None
            written = min(f[name].shape[0] for name in formats.DARKSHOWERS_DATASETS)
    except OSError:
        return None
    kept = 0
    for size in chunk_sizes:  # an interrupted append may have grown some datasets only
        if kept + size > written:
            break
        kept += size
    return kept


def generate(process: str, n: int, out: str | os.PathLike, *, mass_gev: float | None = None,
             seed: int = 0, workers: int = 1, resume: bool = False, progress: bool = True,
             chunk_events: int | None = None, **physics) -> int:
    """Generate ``n`` Pythia events per component into ``out`` (see the module docstring).

    Chunks are computed by ``workers`` processes and written in order, each flushed. If ``out`` is
    an unfinished file of the same request it is continued (``resume=True`` insists on that and
    refuses a file of another request); otherwise ``out`` is overwritten. Returns the number of
    events in the file.

    Workers are started with multiprocessing's "spawn" method (safe after TensorFlow or threads were
    started), so a script calling this with ``workers > 1`` needs the usual
    ``if __name__ == "__main__":`` guard; the ``tfphys-data`` command has it.
    """
    _pythia8mc()
    if n <= 0:
        raise TfphysError(f"--n must be a positive number of events, got {n}")
    if workers < 1:
        raise TfphysError(f"--workers must be a positive number, got {workers}")
    cfg = physics_config(physics)
    chunk_events = CHUNK_EVENTS if chunk_events is None else int(chunk_events)
    chunks = plan(process, mass_gev, n, seed, chunk_events)
    for proc, mass in dict.fromkeys((c[0], c[1]) for c in chunks):
        for k in range(len(qcd_slices(cfg)) if proc == "qcd" else 1):
            check_settings(settings(proc, mass, cfg, k))  # bad settings: fail before writing anything
    sigmas = None  # the QCD slices' σ, once for every worker (and stored in the file)
    if any(c[0] == "qcd" for c in chunks) and len(qcd_slices(cfg)) > 1 and cfg["slice_weighting"] == "xsec":
        sigmas = slice_cross_sections(cfg)
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise TfphysError(f"cannot write {out}: folder {out.parent} does not exist")
    request = _request(process, mass_gev, n, seed, cfg, chunk_events)
    # An interrupted run left its finished chunks in OUT.part (an older one: in OUT itself).
    part = partial_path(out)
    source = part if part.exists() else out
    kept = _resumable(source, request, [c[2] for c in chunks]) if source.exists() else None
    if resume and kept is None:
        raise TfphysError(f"cannot resume {out}: " + (
            "it does not exist" if not source.exists() else
            "it is not an unfinished Pythia run of this request (process, mass, n, seed, physics)"))
    if kept is None:
        writer = formats.DarkShowerWriter(out, generator="pythia", seed=seed, keep_partial=True)
        writer._file.attrs["request"] = request
        if sigmas is not None:
            writer._file.attrs["qcd_slice_sigma_mb"] = json.dumps(
                {f"{lo:g}-{'' if hi is None else f'{hi:g}'}": s for (lo, hi), s in zip(qcd_slices(cfg), sigmas)})
        kept = 0
    else:
        if source == out:
            os.replace(out, part)
        writer = formats.DarkShowerWriter.reopen(out, kept)
    todo, done = [], 0
    for chunk in chunks:
        if done >= kept:
            todo.append((*chunk, cfg, sigmas if chunk[0] == "qcd" else None))
        done += chunk[2]
    total = sum(c[2] for c in chunks)
    with writer, tqdm(total=total, initial=kept, unit="ev", desc=f"pythia:{process}",
                      disable=None if progress else True) as bar:
        if workers == 1 or len(todo) <= 1:
            for task in todo:
                writer.append(_run_chunk(task))
                bar.update(task[2])
        else:
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(workers, len(todo))) as pool:
                for task, events in zip(todo, pool.imap(_run_chunk, todo)):
                    writer.append(events)
                    bar.update(task[2])
        return len(writer)
