"""The cbae ``tfphys-data`` subcommand."""

from __future__ import annotations

from tfphys.cbae import waveforms
from tfphys.cli import add_seed
from tfphys.registry import DataCommand


def _data_arguments(c) -> None:
    c.add_argument("--n", type=int, required=True, help="waveforms (the paper: 50000, split 40k/10k)")
    c.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    add_seed(c, "the generation")
    c.add_argument("--noise-sigma", type=float, default=waveforms.NOISE_SIGMA,
                   help=f"Gaussian noise σ added before normalisation (default {waveforms.NOISE_SIGMA}, the paper's)")


def _generate(args) -> str:
    waveforms.generate(args.n, args.out, seed=args.seed, noise_sigma=args.noise_sigma)
    return waveforms.summary(args.out)


COMMANDS = (DataCommand("cbae", "generate CBAE toy-detector waveforms (Landau, Eq. 1.2) into an HDF5 file",
                           _data_arguments, _generate),
)
