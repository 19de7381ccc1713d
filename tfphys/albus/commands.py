"""The albus ``tfphys-data`` subcommand."""

from __future__ import annotations

from tfphys.albus import injections, storage
from tfphys.cli import WORKERS_HELP, add_seed, check_count
from tfphys.registry import DataCommand


def _data_arguments(a) -> None:
    a.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    a.add_argument("--background", type=int, default=36, help="time-slide background maps (default 36)")
    a.add_argument("--per-level", type=int, default=4, help="chirp maps per visibility level (default 4)")
    a.add_argument("--levels", type=float, nargs="+", help="visibility levels (default 12 14 16 18 20 30 40 50 60)")
    a.add_argument("--glitches", type=int, default=0, help="maps with a coherent glitch (default 0)")
    a.add_argument("--psd", default="auto", choices=("auto", "O3", "analytic"),
                   help="noise curve: O3 (needs pip install 'tfphys[gw]'), analytic aLIGO fit, or auto")
    a.add_argument("--workers", type=int, metavar="K", help=WORKERS_HELP)
    add_seed(a, "the generation")


def _generate(args) -> str:
    check_count("--workers", args.workers)
    storage.build(args.out, n_background=args.background, n_per_level=args.per_level,
                  levels=tuple(args.levels or injections.VISIBILITY_LEVELS), n_glitch=args.glitches,
                  seed=args.seed, workers=args.workers, psd=args.psd)
    return storage.summary(args.out)


COMMANDS = (DataCommand("albus", "build ALBUS H1-L1 coherence maps with chirp injections into an HDF5 "
                           "file (small default; the paper: --background 4500 --per-level 500)",
                           _data_arguments, _generate),
)
