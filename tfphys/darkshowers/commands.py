"""The dark-shower ``tfphys-data`` subcommands: ``darkshowers`` (generate; alias ``generate``) and
``import`` (check and convert your own images)."""

from __future__ import annotations

import os

from tfphys.cli import add_seed, check_count
from tfphys.darkshowers import generate, importer
from tfphys.registry import DataCommand

_PHYSICS = ("pt_hat_min_gev", "m_dark_gev", "r_inv", "meson_mass_gev", "temperature_gev",
            "dark_photon_mass_gev", "dark_photon_decay", "pileup_mu", "pythia_settings",
            "pt_hat_slices_gev", "slice_weighting", "l1_ht_min_gev", "l1_jet_min_gev")


def _generate_arguments(g) -> None:
    g.add_argument("--process", required=True, choices=("qcd", "suep", "svj", "all"),
                   help="all = N QCD events plus N events at every SUEP and SVJ mass point")
    g.add_argument("--mass", type=float, help="mediator mass in GeV (SUEP m_H or SVJ m_Z'; "
                   "default: drawn among the mass points)")
    g.add_argument("--n", type=int, required=True, help="events (per component for --process all)")
    g.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    add_seed(g, "the generation")
    g.add_argument("--generator", default="toy",
                   help="toy (built in, default) or pythia (Pythia 8, needs pip install 'tfphys[pythia]')")
    g.add_argument("--workers", type=int, metavar="K",
                   help="worker processes of --generator pythia (default: all cores); the toy generator "
                        "runs in one process")
    py = g.add_argument_group("Pythia generation (--generator pythia; defaults in tfphys/darkshowers/pythia.py)")
    py.add_argument("--resume", action="store_true",
                    help="continue an unfinished --out of the same request (rerunning the same command does too)")
    py.add_argument("--pt-hat-min", type=float, dest="pt_hat_min_gev", metavar="GEV",
                    help="QCD: one sample with this p̂_T cut in GeV instead of the p̂_T slices")
    py.add_argument("--pt-hat-slices", dest="pt_hat_slices_gev", metavar="EDGES",
                    help="QCD p̂_T slice edges in GeV, comma-separated, the last slice open "
                         "(default 15,30,50,...,2000: see tfphys/darkshowers/pythia.py)")
    py.add_argument("--slice-weighting", dest="slice_weighting", choices=("xsec", "equal"),
                    help="QCD slices mixed by cross-section (xsec: the physical spectrum) or equally "
                         "(equal: a stitched sample, the default: of those measured, closest to the paper's "
                         "baselines, 10 of 22 within ±5 points)")
    py.add_argument("--l1-ht-min", type=float, dest="l1_ht_min_gev", metavar="GEV",
                    help="preselection of every process: L1-like H_T (cone jets > 30 GeV, |η| < 2.5) ≥ GEV (0: off)")
    py.add_argument("--l1-jet-min", type=float, dest="l1_jet_min_gev", metavar="GEV",
                    help="preselection of every process: leading L1-like jet E_T ≥ GEV (0: off)")
    py.add_argument("--m-dark", type=float, dest="m_dark_gev", metavar="GEV", help="SVJ dark meson mass in GeV (20)")
    py.add_argument("--r-inv", type=float, dest="r_inv", metavar="FRACTION", help="SVJ invisible fraction (0.3)")
    py.add_argument("--meson-mass", type=float, dest="meson_mass_gev", metavar="GEV",
                    help="SUEP dark meson mass m_φ in GeV (2)")
    py.add_argument("--temperature", type=float, dest="temperature_gev", metavar="GEV",
                    help="SUEP temperature T in GeV (2)")
    py.add_argument("--dark-photon-mass", type=float, dest="dark_photon_mass_gev", metavar="GEV",
                    help="SUEP m_A' in GeV (0.7)")
    py.add_argument("--dark-photon-decay", dest="dark_photon_decay", metavar="MODE",
                    help="SUEP A' decays: generic (15/15/70 %% ee/μμ/ππ), leptonic, electrons, muons, pions, "
                         "or three fractions e,mu,pi")
    py.add_argument("--pileup", type=float, dest="pileup_mu", metavar="MU",
                    help="mean pile-up interactions overlaid (0: off)")
    py.add_argument("--pythia", action="append", dest="pythia_settings", metavar="'KEY = VALUE'",
                    help="extra Pythia setting, read last (repeatable)")


def _generate(args) -> str:
    physics = {k: getattr(args, k) for k in _PHYSICS}
    check_count("--workers", args.workers)
    workers = args.workers or ((os.cpu_count() or 1) if args.generator == "pythia" else 1)
    n = generate.generate(args.process, args.n, args.out, mass_gev=args.mass, seed=args.seed,
                          generator=args.generator, workers=workers, resume=args.resume, **physics)
    return f"wrote {n} events to {args.out}"


def _import_arguments(im) -> None:
    im.add_argument("file", help="HDF5 (.h5/.hdf5) or NumPy (.npz) file with images (N, 360, 286, 3)")
    im.add_argument("--out", help="tfphys HDF5 file to write (default: only check whether FILE is usable in place)")
    im.add_argument("--transpose", action="store_true", help="images are (N, 286 η, 360 φ, 3): swap to φ, η")
    im.add_argument("--label", type=int, choices=(0, 1, 2), help="class of every event (if FILE has no labels)")
    im.add_argument("--mass", type=float, help="mediator mass in GeV of every event (if FILE has no masses)")
    for key in ("images", "label", "mass", "n_tracks"):
        im.add_argument(f"--{key.replace('_', '-')}-key", default=key, help=f"name of the {key} array (default {key})")


COMMANDS = (
    DataCommand("darkshowers", "generate dark-shower collision images (toy or Pythia) into an HDF5 file",
                _generate_arguments, _generate, aliases=("generate",)),
    DataCommand("import", "check your own dark-shower images (HDF5/NPZ, 360×286×3) and write the tfphys format",
                _import_arguments, importer.main),
)
