"""Validation report of the Pythia 8 generator + CMS-like detector (issue: real collisions in the box).

For QCD and every SUEP / SVJ mass point it generates a modest sample with
:class:`tfphys.darkshowers.pythia.PythiaGenerator` (one process, one core) and reports

* mean ± std of ``n_tracks``, of the total tracker p_T (Σ of channel 0) and the fraction of zero
  pixels (all three channels) at full resolution and after the 5×5 down-sampling of Algorithm 1
  (paper §3: ~99.4 % and 96 %);
* the physics trends: SUEP dark-meson and track multiplicity against m_H; SVJ missing p_T
  against r_inv at m_Z' = 3.1 TeV (truth: |Σp_T| of invisible particles; image: |Σ E_T vector| of
  the ECAL + HCAL pixels);
* the nTracks baseline AUROC of every mass point against the QCD sample (``roc_auc_score``),
  next to the paper's Table 1 nTracks row and the built-in toy simulator's value;
* throughput in events per CPU-second (``time.process_time`` of this single process, so the
  figure is per core even on a busy machine) and wall-clock events/s, Pythia init excluded.

* the zero-pixel fraction of QCD with pile-up (μ = 30, charged-hadron subtraction).

Usage: python tools/validate_generation.py [--n-qcd 1000] [--n-signal 250] [--n-rinv 120]
           [--n-pileup 100] [--pileup-mu 30] [--seed 1] [--plot validate_generation.png] [--json F]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from tfphys.darkshowers import detector, pythia, toy

PAPER_NTRACKS_AUROC = {  # Table 1, nTracks row (%)
    ("suep", 125.0): 78.68, ("suep", 200.0): 92.39, ("suep", 300.0): 98.31, ("suep", 400.0): 99.6,
    ("suep", 700.0): 99.94, ("suep", 1000.0): 99.93,
    ("svj", 2100.0): 82.05, ("svj", 3100.0): 89.32, ("svj", 4100.0): 92.92,
}
R_INV_SCAN = (0.0, 0.3, 0.6)


def _downsampled_zero_fraction(images):
    """Zero-pixel fraction after Algorithm 1's 5×5 / stride-5 'SAME' sum pooling (286 → 290 padded)."""
    padded = np.pad(images, [(0, 0), (0, 0), (2, 2), (0, 0)])
    n = len(images)
    blocks = padded.reshape(n, 72, 5, 58, 5, 3).sum(axis=(2, 4))
    return float((blocks == 0).mean())


def _calo_met(images):
    """|Σ E_T vector| of the ECAL and HCAL pixels, φ at each row's centre."""
    phi = -np.pi + (np.arange(detector.N_PHI) + 0.5) * detector.PHI_PIXEL
    et_row = images[..., 1:].sum(axis=(2, 3), dtype=np.float64)  # (n, 360)
    return np.hypot(et_row @ np.cos(phi), et_row @ np.sin(phi))


def run_component(process, mass, n, seed, **physics):
    """Generate n events in chunks; per-event summaries, throughput and init time."""
    t0 = time.perf_counter()
    gen = pythia.PythiaGenerator(process, mass, physics)
    init_s = time.perf_counter() - t0
    seeds = np.random.SeedSequence(seed).spawn(-(-n // pythia.CHUNK_EVENTS))
    rows = {k: [] for k in ("n_tracks", "tracker_pt", "met_gev", "calo_met", "n_charged")}
    zero_full, zero_down, weights = [], [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for k, s in enumerate(seeds):
        size = min(pythia.CHUNK_EVENTS, n - k * pythia.CHUNK_EVENTS)
        out = gen.chunk(size, s, truth=True)
        images = out["images"]
        rows["n_tracks"].append(out["n_tracks"])
        rows["tracker_pt"].append(images[..., 0].sum(axis=(1, 2), dtype=np.float64))
        rows["met_gev"].append(out["met_gev"])
        rows["calo_met"].append(_calo_met(images))
        rows["n_charged"].append(out["n_charged"])
        zero_full.append(float((images == 0).mean()))
        zero_down.append(_downsampled_zero_fraction(images))
        weights.append(size)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result = {k: np.concatenate(v) for k, v in rows.items()}
    result.update(zero_full=np.average(zero_full, weights=weights),
                  zero_down=np.average(zero_down, weights=weights),
                  ev_per_cpu_s=n / cpu, ev_per_wall_s=n / wall, init_s=init_s,
                  n_mesons=np.mean(gen.hook.n_mesons) if gen.hook is not None else None)
    return result


def _ms(x):
    return f"{np.mean(x):.1f} ± {np.std(x):.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-qcd", type=int, default=1000)
    p.add_argument("--n-signal", type=int, default=250)
    p.add_argument("--n-rinv", type=int, default=120, help="SVJ(3.1 TeV) events per r_inv of the scan")
    p.add_argument("--n-pileup", type=int, default=100, help="QCD events with pile-up (0: skip)")
    p.add_argument("--pileup-mu", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--plot", default="validate_generation.png")
    p.add_argument("--json", help="write all figures to this JSON file")
    args = p.parse_args(argv)

    comps = [("qcd", None, args.n_qcd)] + [(proc, m, args.n_signal) for proc in ("suep", "svj")
                                           for m in pythia.MASSES_GEV[proc]]
    results = {}
    for k, (proc, mass, n) in enumerate(comps):
        results[(proc, mass)] = run_component(proc, mass, n, args.seed * 1000 + k)
        r = results[(proc, mass)]
        print(f"  {proc} {mass or '':>6} done: {r['ev_per_cpu_s']:.1f} ev/CPU-s", flush=True)
    scan = {}
    for j, r_inv in enumerate(R_INV_SCAN):
        scan[r_inv] = run_component("svj", 3100.0, args.n_rinv, args.seed * 1000 + 100 + j, r_inv=r_inv)
        print(f"  svj r_inv {r_inv} done", flush=True)

    pileup = None
    if args.n_pileup:
        pileup = run_component("qcd", None, args.n_pileup, args.seed * 1000 + 200, pileup_mu=args.pileup_mu)
        print(f"  qcd pile-up {args.pileup_mu:g} done", flush=True)

    qcd = results[("qcd", None)]
    toy_qcd = toy.simulate("qcd", 256, seed=args.seed)["n_tracks"]
    print(f"\nPythia {pythia.PYTHIA_VERSION} + tfphys CMS-like detector; {platform.processor() or platform.machine()}, "
          f"{args.n_qcd} QCD and {args.n_signal} events per mass point, seed {args.seed}\n")
    print("| process | mass/GeV | n_tracks | tracker Σp_T/GeV | zero pixels full / 5×5 | "
          "nTracks AUROC % (paper, toy) | ev/CPU-s | ev/s wall |")
    print("|---|---|---|---|---|---|---|---|")
    table = []
    for (proc, mass), r in results.items():
        if proc == "qcd":
            auc = "—"
        else:
            y = np.r_[np.zeros(len(qcd["n_tracks"])), np.ones(len(r["n_tracks"]))]
            ours = 100 * roc_auc_score(y, np.r_[qcd["n_tracks"], r["n_tracks"]])
            toy_sig = toy.simulate(proc, 256, mass_gev=mass, seed=args.seed + 1)["n_tracks"]
            toy_auc = 100 * roc_auc_score(np.r_[np.zeros(256), np.ones(256)], np.r_[toy_qcd, toy_sig])
            auc = f"{ours:.1f} ({PAPER_NTRACKS_AUROC[(proc, mass)]:.1f}, {toy_auc:.1f})"
            r["auroc"], r["toy_auroc"] = ours, toy_auc
        row = (f"| {proc} | {mass or 0:g} | {_ms(r['n_tracks'])} | {_ms(r['tracker_pt'])} | "
               f"{100 * r['zero_full']:.2f} % / {100 * r['zero_down']:.1f} % | {auc} | "
               f"{r['ev_per_cpu_s']:.1f} | {r['ev_per_wall_s']:.1f} |")
        print(row)
        table.append(row)

    if pileup is not None:
        r = pileup
        print(f"| qcd, pile-up μ = {args.pileup_mu:g} (CHS) | 0 | {_ms(r['n_tracks'])} | {_ms(r['tracker_pt'])} | "
              f"{100 * r['zero_full']:.2f} % / {100 * r['zero_down']:.1f} % | — | "
              f"{r['ev_per_cpu_s']:.1f} | {r['ev_per_wall_s']:.1f} |")

    print("\nSUEP: multiplicity against m_H")
    print("| m_H/GeV | dark mesons | charged particles (p_T>0.1, |η|<2.5) | n_tracks |")
    print("|---|---|---|---|")
    suep_means = []
    for m in pythia.MASSES_GEV["suep"]:
        r = results[("suep", m)]
        suep_means.append(np.mean(r["n_tracks"]))
        print(f"| {m:g} | {r['n_mesons']:.1f} | {_ms(r['n_charged'])} | {_ms(r['n_tracks'])} |")
    print(f"n_tracks grows with m_H: {bool(np.all(np.diff(suep_means) > 0))}")

    print("\nSVJ(3.1 TeV): missing p_T against r_inv")
    print("| r_inv | truth MET/GeV | calorimeter-image MET/GeV | n_tracks |")
    print("|---|---|---|---|")
    met_means = []
    for r_inv, r in scan.items():
        met_means.append(np.mean(r["met_gev"]))
        print(f"| {r_inv:g} | {_ms(r['met_gev'])} | {_ms(r['calo_met'])} | {_ms(r['n_tracks'])} |")
    print(f"truth MET grows with r_inv: {bool(np.all(np.diff(met_means) > 0))}")
    print(f"QCD: truth MET {_ms(qcd['met_gev'])} GeV, image MET {_ms(qcd['calo_met'])} GeV")
    inits = {f"{p}:{m or 0:g}": round(r["init_s"], 2) for (p, m), r in results.items()}
    print(f"Pythia init per component (s): {inits}")

    if args.plot:
        _plot(results, scan, args.plot)
        print(f"figure: {args.plot}")
    if args.json:
        summary = {f"{p}:{m or 0:g}": {k: (float(np.mean(v)) if isinstance(v, np.ndarray) else v)
                                       for k, v in r.items()} for (p, m), r in results.items()}
        summary["rinv_scan"] = {str(k): {"met_gev": float(np.mean(r["met_gev"])),
                                         "calo_met": float(np.mean(r["calo_met"]))} for k, r in scan.items()}
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


def _plot(results, scan, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bins = np.linspace(0, 800, 41)
    qcd = results[("qcd", None)]["n_tracks"]
    for ax, proc in zip(axes[:2], ("suep", "svj")):
        ax.hist(qcd, bins, histtype="step", density=True, color="k", lw=2, label="QCD")
        for m in pythia.MASSES_GEV[proc]:
            ax.hist(results[(proc, m)]["n_tracks"], bins, histtype="step", density=True,
                    label=f"{proc.upper()} {m:g} GeV")
        ax.set(xlabel="n_tracks", ylabel="density", title=f"Pythia 8: {proc.upper()} vs QCD", yscale="log")
        ax.legend(fontsize=7)
    met_bins = np.linspace(0, 1500, 41)
    for r_inv, r in scan.items():
        axes[2].hist(r["met_gev"], met_bins, histtype="step", density=True, label=f"r_inv = {r_inv:g}")
    axes[2].set(xlabel="truth missing p_T / GeV", ylabel="density", title="SVJ 3.1 TeV")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
