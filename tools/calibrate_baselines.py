"""Calibration of the Pythia background against the CoDAE paper's Table 1 physics baselines (issue 18).

One run generates QCD with the given physics (p̂_T slices, their weighting, preselection, pile-up)
and every SUEP / SVJ mass point with the same preselection, in ``--workers`` processes, and prints
side by side

* the Total-energy AUROCs (Eq. 4: Σ of the Trk, ECAL, HCAL channel, :func:`scores.total_energy`)
  and the nTracks AUROC at every mass point and their means (mAUC) next to Table 1 (which has the
  Trk and nTracks rows only: 2 × (9 + 2) = 22 entries), counting the entries more than
  ``--tolerance`` points off;
* the fraction of zero pixels of QCD (all three channels, and the tracker alone) at full
  resolution and after Algorithm 1's 5×5 sum pooling (paper §3: ~99.4 % and ~96 %);
* per component: the preselection efficiency and the CPU time per kept event, Pythia
  initialisation included and excluded (``time.process_time`` in each worker, so the figure is per
  core however loaded the machine is).

AUROC = ``sklearn.metrics.roc_auc_score`` of QCD (label 0) against one mass point (label 1).

Usage: python tools/calibrate_baselines.py [--n-qcd 2000] [--n-signal 500] [--workers 2]
           [--seed 1] [--slice-weighting equal] [--pt-hat-slices 15,30,...] [--l1-ht-min 0]
           [--l1-jet-min 0] [--pileup 0] [--json F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from tfphys.darkshowers import pythia, scores

PAPER_TOTAL_ENERGY_TRK = {  # Table 1, "Total energy (Trk)" row (AUROC %)
    ("suep", 125.0): 45.18, ("suep", 200.0): 48.4, ("suep", 300.0): 54.13, ("suep", 400.0): 58.51,
    ("suep", 700.0): 67.39, ("suep", 1000.0): 70.89, ("svj", 2100.0): 55.86, ("svj", 3100.0): 72.13,
    ("svj", 4100.0): 81.46, ("suep", "mAUC"): 57.42, ("svj", "mAUC"): 69.82,
}
PAPER_NTRACKS = {  # Table 1, "nTracks" row
    ("suep", 125.0): 78.68, ("suep", 200.0): 92.39, ("suep", 300.0): 98.31, ("suep", 400.0): 99.6,
    ("suep", 700.0): 99.94, ("suep", 1000.0): 99.93, ("svj", 2100.0): 82.05, ("svj", 3100.0): 89.32,
    ("svj", 4100.0): 92.92, ("suep", "mAUC"): 94.81, ("svj", "mAUC"): 88.1,
}
PAPER_ZERO_FULL, PAPER_ZERO_POOLED = 99.4, 96.0  # §3, per cent

_GEN: dict = {}


def _pooled(images):
    """Algorithm 1's 5×5 / stride-5 'SAME' sum pooling (286 η columns padded to 290)."""
    padded = np.pad(images, [(0, 0), (0, 0), (2, 2), (0, 0)])
    return padded.reshape(len(images), 72, 5, 58, 5, images.shape[-1]).sum(axis=(2, 4))


def _chunk(task):
    """Worker: per-event summaries of one chunk, the CPU seconds of init and of generation."""
    process, mass, size, seq, physics, sigmas = task
    key = (process, mass)
    init = 0.0
    if key not in _GEN:
        t0 = time.process_time()
        _GEN.clear()  # one component at a time per worker: tasks come component by component
        _GEN[key] = pythia.PythiaGenerator(process, mass, physics, cross_sections=sigmas)
        init = time.process_time() - t0
    gen = _GEN[key]
    tried = gen.tried.sum()
    t0 = time.process_time()
    out = gen.chunk(size, seq, truth=True)
    cpu = time.process_time() - t0
    images = out["images"]
    pooled = _pooled(images)
    return dict(process=process, mass=mass, energy=scores.total_energy(images), n_tracks=out["n_tracks"],
                zero_full=float((images == 0).mean()), zero_pooled=float((pooled == 0).mean()),
                zero_full_trk=float((images[..., 0] == 0).mean()),
                zero_pooled_trk=float((pooled[..., 0] == 0).mean()),
                slice=out["slice"], tried=int(gen.tried.sum() - tried), n=size, cpu=cpu, init=init)


def _auc(background, signal):
    y = np.r_[np.zeros(len(background)), np.ones(len(signal))]
    return 100.0 * roc_auc_score(y, np.r_[background, signal])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-qcd", type=int, default=2000)
    p.add_argument("--n-signal", type=int, default=500)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tolerance", type=float, default=5.0, help="AUROC points counted as agreeing")
    p.add_argument("--pt-hat-slices", dest="pt_hat_slices_gev")
    p.add_argument("--pt-hat-min", type=float, dest="pt_hat_min_gev")
    p.add_argument("--slice-weighting", dest="slice_weighting", choices=pythia.SLICE_WEIGHTINGS)
    p.add_argument("--l1-ht-min", type=float, dest="l1_ht_min_gev")
    p.add_argument("--l1-jet-min", type=float, dest="l1_jet_min_gev")
    p.add_argument("--pileup", type=float, dest="pileup_mu")
    p.add_argument("--json", help="write the figures to this JSON file")
    args = p.parse_args(argv)
    physics = pythia.physics_config({k: getattr(args, k) for k in (
        "pt_hat_slices_gev", "pt_hat_min_gev", "slice_weighting", "l1_ht_min_gev", "l1_jet_min_gev",
        "pileup_mu")})
    t0 = time.process_time()
    sigmas = (pythia.slice_cross_sections(physics) if len(pythia.qcd_slices(physics)) > 1
              and physics["slice_weighting"] == "xsec" else None)
    sigma_cpu = time.process_time() - t0
    comps = [("qcd", None, args.n_qcd)] + [(proc, m, args.n_signal) for proc in ("suep", "svj")
                                           for m in pythia.MASSES_GEV[proc]]
    tasks = []
    for k, (proc, mass, n) in enumerate(comps):
        for proc_, mass_, size, seq in pythia.plan(proc, mass, n, args.seed * 1000 + k):
            tasks.append((proc_, mass_, size, seq, physics, sigmas if proc == "qcd" else None))
    wall0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.workers) as pool:
        results = pool.map(_chunk, tasks, chunksize=1)
    wall = time.perf_counter() - wall0

    comp = {}
    for r in results:
        c = comp.setdefault((r["process"], r["mass"]), {k: [] for k in r})
        for k, v in r.items():
            c[k].append(v)
    for c in comp.values():
        for k in ("energy", "n_tracks", "slice"):
            c[k] = np.concatenate(c[k])
        w = np.asarray(c["n"], float)
        for k in ("zero_full", "zero_pooled", "zero_full_trk", "zero_pooled_trk"):
            c[k] = float(np.average(c[k], weights=w))
        c["n"], c["tried"] = int(w.sum()), int(np.sum(c["tried"]))
        c["cpu"], c["init"] = float(np.sum(c["cpu"])), float(np.sum(c["init"]))
    qcd = comp[("qcd", None)]
    cpu_name = platform.processor() or platform.machine()
    print(f"\nPythia {pythia.PYTHIA_VERSION}, {cpu_name}, {args.workers} workers, seed {args.seed}; "
          f"{qcd['n']} QCD, {args.n_signal} per mass point")
    slices = pythia.qcd_slices(physics)
    print(f"QCD: {len(slices)} p̂_T slice(s) from {slices[0][0]:g} GeV, weighting "
          f"{physics['slice_weighting'] if len(slices) > 1 else '—'}; preselection H_T ≥ "
          f"{physics['l1_ht_min_gev']:g}, leading jet ≥ {physics['l1_jet_min_gev']:g} GeV; "
          f"pile-up μ = {physics['pileup_mu']:g}")
    if sigmas is not None:
        print(f"slice σ (mb), {pythia.SIGMA_PILOT_EVENTS} process-level events each, "
              f"{sigma_cpu:.1f} CPU-s: " + ", ".join(f"{lo:g}+: {s:.3g}" for (lo, _), s in zip(slices, sigmas)))
    counts = np.bincount(qcd["slice"], minlength=len(slices))
    print("kept QCD events per slice: " + ", ".join(f"{lo:g}+: {c}" for (lo, _), c in zip(slices, counts)))

    print("\n| mass point | Total energy Trk: ours / paper | Δ | ECAL | HCAL | nTracks: ours / paper | Δ "
          "| presel. eff. | ev/CPU-s (excl. / incl. init) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows, misses, summary = {}, [], {}
    for (proc, mass), c in comp.items():
        if proc == "qcd":
            continue
        aucs = [_auc(qcd["energy"][:, ch], c["energy"][:, ch]) for ch in range(3)]
        rows[(proc, mass)] = (*aucs, _auc(qcd["n_tracks"], c["n_tracks"]))
    for proc in ("suep", "svj"):
        keys = [k for k in rows if k[0] == proc]
        rows[(proc, "mAUC")] = tuple(np.mean([rows[k][i] for k in keys]) for i in range(4))
    for key, (trk, ecal, hcal, ntr) in rows.items():
        proc, mass = key
        d_e, d_n = trk - PAPER_TOTAL_ENERGY_TRK[key], ntr - PAPER_NTRACKS[key]
        for what, d in (("Total energy (Trk)", d_e), ("nTracks", d_n)):
            if abs(d) > args.tolerance:
                misses.append(f"{what} {proc.upper()} {mass if isinstance(mass, str) else f'{mass:g}'} ({d:+.1f})")
        c = comp.get(key)
        extra = ("| — | — |" if c is None else f"| {c['n'] / max(c['tried'], 1):.3f} | {c['n'] / c['cpu']:.0f}"
                 f" / {c['n'] / (c['cpu'] + c['init']):.0f} |")
        label = f"{proc.upper()} {mass if isinstance(mass, str) else f'{mass:g}'}"
        print(f"| {label} | {trk:.1f} / {PAPER_TOTAL_ENERGY_TRK[key]:.1f} | {d_e:+.1f} | {ecal:.1f} | {hcal:.1f} "
              f"| {ntr:.1f} / {PAPER_NTRACKS[key]:.1f} | {d_n:+.1f} {extra}")
        summary[label] = dict(total_energy=[trk, ecal, hcal], n_tracks=ntr)
    print(f"\nWithin ±{args.tolerance:g} of Table 1: {22 - len(misses)} of 22 entries; off: "
          + ("; ".join(misses) if misses else "none"))
    print(f"QCD zero pixels, all channels: full {100 * qcd['zero_full']:.2f} % (paper ~{PAPER_ZERO_FULL} %), "
          f"after Algorithm 1 {100 * qcd['zero_pooled']:.1f} % (paper ~{PAPER_ZERO_POOLED:.0f} %); "
          f"tracker only: {100 * qcd['zero_full_trk']:.2f} % / {100 * qcd['zero_pooled_trk']:.1f} %")
    sig = [c for k, c in comp.items() if k[0] != "qcd"]
    sig_n, sig_cpu = sum(c["n"] for c in sig), sum(c["cpu"] for c in sig)
    print(f"QCD: {qcd['n'] / qcd['cpu']:.0f} kept events per CPU-s ({qcd['n'] / (qcd['cpu'] + qcd['init']):.0f} "
          f"with the {qcd['init']:.0f} CPU-s of Pythia init, preselection efficiency "
          f"{qcd['n'] / max(qcd['tried'], 1):.3f}); signals: {sig_n / sig_cpu:.0f} per CPU-s; "
          f"wall {wall:.0f} s for {qcd['n'] + sig_n} events")
    if args.json:
        summary.update(misses=misses, physics=pythia._jsonable(physics), sigmas=sigmas,
                       zero=[qcd["zero_full"], qcd["zero_pooled"], qcd["zero_full_trk"], qcd["zero_pooled_trk"]],
                       qcd_ev_per_cpu_s=qcd["n"] / qcd["cpu"], slice_counts=counts.tolist())
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
