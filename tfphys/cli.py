"""Command-line entry points: ``tfphys-train``, ``tfphys-data``, ``tfphys-eval`` and ``tfphys-score``.

Thin by design: parse, call the library, report. A :class:`~tfphys.errors.TfphysError` (bad file,
bad config, unknown name) is printed as one line ``PROG: error: MESSAGE`` with exit status 1;
argparse usage errors exit with 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence

from tfphys.errors import TfphysError

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_WRAPPED = re.compile(r"TfphysError: (.+)")


def _run(prog: str, main: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
         argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    try:
        return main(args)
    except TfphysError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished epochs/chunks are kept", file=sys.stderr)
        return 130
    except Exception as err:
        # A TfphysError raised inside a tf.data numpy_function reaches us wrapped in a TF error.
        found = _WRAPPED.search(str(err)) if type(err).__module__.startswith("tensorflow") else None
        if found is None:
            raise
        print(f"{prog}: error: {found.group(1).strip()}", file=sys.stderr)
        return 1


def _import_tensorflow_quietly(threads: int | None = None, strategy: str | None = None):
    """Import TensorFlow and initialise its devices without its C++ start-up notes (oneDNN,
    "could not find cuda drivers"), which are noise on a CPU machine.

    ``threads``: limit TensorFlow's intra- and inter-op thread pools (set before the runtime
    starts; e.g. so that Keras is timed on as many cores as LiteRT).
    ``strategy``: a :mod:`tfphys.distribute` strategy name; the strategy is created first (it
    must precede every other TensorFlow op) and returned.
    """
    if "tensorflow" in sys.modules and strategy is None:
        return None
    from tfphys.console import quiet

    made = None
    with quiet():
        if strategy is not None:
            from tfphys.distribute import make_strategy

            made = make_strategy(strategy)
        import tensorflow as tf

        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.list_logical_devices()
    # Python-side notes such as "5 out of the last 15 calls … triggered tf.function retracing"
    # (every sub-model predicted once during an export) are not the user's business.
    tf.get_logger().setLevel("ERROR")
    return made


# ---------------------------------------------------------------------------------- tfphys-train
def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfphys-train",
        description="Train a tfphys model. The run dir gets model.keras (best on the monitored "
                    "metric), config.toml (resolved) and history.csv; rerun the same command "
                    "(or add --resume) to continue an interrupted run.",
    )
    p.add_argument("model", help="model name, e.g. codae or cae (a models/MODEL.toml must exist)")
    p.add_argument("--config", help="TOML config (default: models/MODEL.toml)")
    p.add_argument("--data", help="HDF5 data file (default: a cached dataset generated with a fixed seed)")
    p.add_argument("--epochs", type=int, help="override [train] epochs")
    p.add_argument("--batch-size", type=int, help="override [pipeline] batch_size")
    p.add_argument("--out", help="run dir (default: runs/MODEL)")
    p.add_argument("--seed", type=int, help="override [train] seed")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    from tfphys.distribute import STRATEGIES

    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy: default (one process), mirrored (one replica per local GPU; "
                        "one on a CPU-only machine), multiworker (one process per worker, cluster from "
                        "TF_CONFIG or srun; see README, Scaling out). --batch-size is the global batch")
    return p


def _train(args: argparse.Namespace) -> int:
    strategy = _import_tensorflow_quietly(strategy=args.strategy)
    from tfphys import config as configs
    from tfphys.models import registry

    registry.get(args.model)  # unknown model: error before anything is loaded
    cfg = configs.load(args.config or configs.default_config_path(args.model))
    cfg = configs.override(cfg, "train", "epochs", args.epochs)
    cfg = configs.override(cfg, "pipeline", "batch_size", args.batch_size)
    cfg = configs.override(cfg, "train", "seed", args.seed)
    if args.batch_size is not None and args.batch_size <= 0:
        raise TfphysError(f"--batch-size must be positive, got {args.batch_size}")

    from tfphys.training import train

    result = train(args.model, cfg, args.out or f"runs/{args.model}", data=args.data,
                   resume=args.resume, strategy=strategy)
    last = result.history[-1] if result.history else {}
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "epoch")
    print(f"trained {args.model}: {len(result.history)} epoch(s){'; ' + summary if summary else ''}")
    print(f"model: {result.model_path}")
    return 0


def train_main(argv: Sequence[str] | None = None) -> int:
    return _run("tfphys-train", _train, train_parser(), argv)


# ----------------------------------------------------------------------------------- tfphys-data
def data_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tfphys-data", description="Generate and inspect tfphys data files.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate dark-shower collision images into an HDF5 file")
    g.add_argument("--process", required=True, choices=("qcd", "suep", "svj", "all"),
                   help="all = N QCD events plus N events at every SUEP and SVJ mass point")
    g.add_argument("--mass", type=float, help="mediator mass in GeV (SUEP m_H or SVJ m_Z'; "
                   "default: drawn among the mass points)")
    g.add_argument("--n", type=int, required=True, help="events (per component for --process all)")
    g.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--generator", default="toy",
                   help="toy (built in, default) or pythia (Pythia 8, needs pip install 'tfphys[pythia]')")
    py = g.add_argument_group("Pythia generation (--generator pythia; defaults in tfphys/data/darkshowers/pythia.py)")
    py.add_argument("--workers", type=int, default=1, metavar="K", help="worker processes (default 1)")
    py.add_argument("--resume", action="store_true",
                    help="continue an unfinished --out of the same request (rerunning the same command does too)")
    py.add_argument("--pt-hat-min", type=float, dest="pt_hat_min_gev", metavar="GEV", help="QCD p̂_T cut in GeV (100)")
    py.add_argument("--m-dark", type=float, dest="m_dark_gev", metavar="GEV", help="SVJ dark meson mass in GeV (20)")
    py.add_argument("--r-inv", type=float, dest="r_inv", metavar="FRACTION", help="SVJ invisible fraction (0.3)")
    py.add_argument("--meson-mass", type=float, dest="meson_mass_gev", metavar="GEV", help="SUEP dark meson mass m_φ in GeV (2)")
    py.add_argument("--temperature", type=float, dest="temperature_gev", metavar="GEV", help="SUEP temperature T in GeV (2)")
    py.add_argument("--dark-photon-mass", type=float, dest="dark_photon_mass_gev", metavar="GEV", help="SUEP m_A' in GeV (0.7)")
    py.add_argument("--dark-photon-decay", dest="dark_photon_decay", metavar="MODE",
                    help="SUEP A' decays: generic (15/15/70 %% ee/μμ/ππ), leptonic, electrons, muons, pions, "
                         "or three fractions e,mu,pi")
    py.add_argument("--pileup", type=float, dest="pileup_mu", metavar="MU", help="mean pile-up interactions overlaid (0: off)")
    py.add_argument("--pythia", action="append", dest="pythia_settings", metavar="'KEY = VALUE'",
                    help="extra Pythia setting, read last (repeatable)")
    i = sub.add_parser("info", help="validate a data file and summarise its content")
    i.add_argument("file")
    im = sub.add_parser("import", help="check your own images (HDF5/NPZ, 360×286×3) and write the tfphys format")
    im.add_argument("file", help="HDF5 (.h5/.hdf5) or NumPy (.npz) file with images (N, 360, 286, 3)")
    im.add_argument("--out", help="tfphys HDF5 file to write (default: only check whether FILE is usable in place)")
    im.add_argument("--transpose", action="store_true", help="images are (N, 286 η, 360 φ, 3): swap to φ, η")
    im.add_argument("--label", type=int, choices=(0, 1, 2), help="class of every event (if FILE has no labels)")
    im.add_argument("--mass", type=float, help="mediator mass in GeV of every event (if FILE has no masses)")
    for key in ("images", "label", "mass", "n_tracks"):
        im.add_argument(f"--{key.replace('_', '-')}-key", default=key, help=f"name of the {key} array (default {key})")
    c = sub.add_parser("cbae", help="generate CBAE toy-detector waveforms (Landau, Eq. 1.2) into an HDF5 file")
    c.add_argument("--n", type=int, required=True, help="waveforms (the paper: 50000, split 40k/10k)")
    c.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--noise-sigma", type=float, default=0.05,
                   help="Gaussian noise σ added before normalisation (default 0.05, the paper's)")
    a = sub.add_parser("albus", help="build ALBUS H1-L1 coherence maps with chirp injections into an HDF5 file "
                       "(small default; the paper: --background 4500 --per-level 500)")
    a.add_argument("--out", required=True, help="output HDF5 file (overwritten)")
    a.add_argument("--background", type=int, default=36, help="time-slide background maps (default 36)")
    a.add_argument("--per-level", type=int, default=4, help="chirp maps per visibility level (default 4)")
    a.add_argument("--levels", type=float, nargs="+", help="visibility levels (default 12 14 16 18 20 30 40 50 60)")
    a.add_argument("--glitches", type=int, default=0, help="maps with a coherent glitch (default 0)")
    a.add_argument("--psd", default="auto", choices=("auto", "O3", "analytic"),
                   help="noise curve: O3 (needs pip install 'tfphys[gw]'), analytic aLIGO fit, or auto")
    a.add_argument("--workers", type=int, help="processes (default: all cores)")
    a.add_argument("--seed", type=int, default=0)
    return p


def _data(args: argparse.Namespace) -> int:
    if args.command == "generate":
        from tfphys.data.darkshowers import generate

        physics = {k: getattr(args, k) for k in (
            "pt_hat_min_gev", "m_dark_gev", "r_inv", "meson_mass_gev", "temperature_gev",
            "dark_photon_mass_gev", "dark_photon_decay", "pileup_mu", "pythia_settings")}
        n = generate(args.process, args.n, args.out, mass_gev=args.mass, seed=args.seed,
                     generator=args.generator, workers=args.workers, resume=args.resume, **physics)
        print(f"wrote {n} events to {args.out}")
        return 0
    if args.command == "cbae":
        from tfphys.data import waveforms

        waveforms.generate(args.n, args.out, seed=args.seed, noise_sigma=args.noise_sigma)
        print(waveforms.summary(args.out))
        return 0
    if args.command == "albus":
        from tfphys.data.gw import injections, storage

        storage.build(args.out, n_background=args.background, n_per_level=args.per_level,
                      levels=tuple(args.levels or injections.VISIBILITY_LEVELS), n_glitch=args.glitches,
                      seed=args.seed, workers=args.workers, psd=args.psd)
        print(storage.summary(args.out))
        return 0
    if args.command == "import":
        from tfphys.data import importer

        print(importer.main(args))
        return 0
    from tfphys.data import waveforms
    from tfphys.data.formats import summary

    from tfphys.data.gw import storage as albus_storage

    if albus_storage.is_albus_file(args.file):
        print(albus_storage.summary(args.file))
        return 0
    print(waveforms.summary(args.file) if waveforms.is_waveform_file(args.file) else summary(args.file))
    return 0


def data_main(argv: Sequence[str] | None = None) -> int:
    return _run("tfphys-data", _data, data_parser(), argv)


# ----------------------------------------------------------------------------------- tfphys-eval
def eval_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfphys-eval",
        description="Evaluate trained tfphys models (tfphys-train run dirs) the way their paper does; "
                    "writes a Markdown report with its plots. Several run dirs of one family are "
                    "evaluated together (e.g. CoDAE, CAE and baselines into one set of tables).",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="tfphys-train run dir(s) (model.keras + config.toml)")
    p.add_argument("--data", help="evaluation data file (default: the model family's cached test sample)")
    p.add_argument("--out", help="report dir (default: FIRST_RUN/eval)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _run_config(run) -> dict:
    from tfphys import config as configs

    if not (run / "config.toml").is_file():
        raise TfphysError(f"{run} is not a tfphys-train run dir: it has no config.toml")
    cfg = configs.load(run / "config.toml")
    if not cfg.get("model_name"):
        raise TfphysError(f"{run / 'config.toml'} names no model (no model_name key)")
    return cfg


def _eval(args: argparse.Namespace) -> int:
    """The first run's family evaluates; ``spec.evaluate(run, cfg, out, data, seed)`` gets the
    other runs as ``others=[(run, cfg), ...]`` (families that compare models accept it)."""
    from pathlib import Path

    runs = [Path(r) for r in args.runs]
    cfgs = [_run_config(r) for r in runs]
    _import_tensorflow_quietly()
    from tfphys.models import registry

    spec = registry.get(cfgs[0]["model_name"])
    if spec.evaluate is None:
        raise TfphysError(f"model {spec.name!r} has no evaluation yet")
    if args.data is not None and not Path(args.data).is_file():
        raise TfphysError(f"data file {args.data} does not exist")
    out = Path(args.out) if args.out else runs[0] / "eval"
    data = Path(args.data) if args.data else None
    if len(runs) == 1:
        report = spec.evaluate(runs[0], cfgs[0], out, data, args.seed)
    else:
        import inspect

        if "others" not in inspect.signature(spec.evaluate).parameters:
            raise TfphysError(f"{spec.name} runs are evaluated one at a time; give one run dir")
        report = spec.evaluate(runs[0], cfgs[0], out, data, args.seed, others=list(zip(runs[1:], cfgs[1:])))
    print(f"report: {report}")
    return 0


def eval_main(argv: Sequence[str] | None = None) -> int:
    return _run("tfphys-eval", _eval, eval_parser(), argv)


# ---------------------------------------------------------------------------------- tfphys-score
def score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tfphys-score",
        description="Score a large file in shards: each process scores events [i·n/N, (i+1)·n/N) "
                    "into OUT/scores-IIIII-of-NNNNN.h5; then --merge OUT checks that every event was "
                    "scored exactly once and writes OUT/scores.h5 (see tfphys/scoring.py).",
    )
    p.add_argument("run", nargs="?", metavar="RUN", help="tfphys-train run dir (dark-shower model or albus)")
    p.add_argument("--data", help="HDF5 file to score (dark-shower events or ALBUS maps)")
    p.add_argument("--out", help="output dir for the shard files")
    p.add_argument("--shard", default="0/1", metavar="i/N", help="score shard i of N (default 0/1: everything)")
    p.add_argument("--threads", type=int, metavar="T",
                   help="TensorFlow threads per process (e.g. cores ÷ processes on one machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of Monte-Carlo scores (CoDVAE KL)")
    p.add_argument("--merge", metavar="OUT", help="merge the shard files of OUT instead of scoring")
    return p


def _score(args: argparse.Namespace) -> int:
    from tfphys import scoring

    if args.merge:
        if args.run or args.data:
            raise TfphysError("--merge OUT takes no RUN or --data")
        path = scoring.merge(args.merge)
        import h5py

        with h5py.File(path, "r") as f:
            print(f"merged {f.attrs['merged_shards']} shard(s): {f.attrs['n_events']} events, each scored "
                  f"once; scores: {', '.join(f['scores'])}")
        print(f"scores: {path}")
        return 0
    if not (args.run and args.data and args.out):
        raise TfphysError("give RUN, --data FILE and --out DIR (or --merge OUT)")
    shard = scoring.parse_shard(args.shard)
    if args.threads is not None and args.threads < 1:
        raise TfphysError(f"--threads must be positive, got {args.threads}")
    _import_tensorflow_quietly(threads=args.threads)
    path = scoring.score_shard(args.run, args.data, args.out, shard=shard, seed=args.seed)
    print(f"shard {shard[0]}/{shard[1]}: {path}")
    return 0


def score_main(argv: Sequence[str] | None = None) -> int:
    return _run("tfphys-score", _score, score_parser(), argv)
