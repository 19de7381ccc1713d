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
from pathlib import Path

from tfphys import registry
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
    """``tfphys-data info FILE`` plus the subcommands every family contributes (its generators)."""
    p = argparse.ArgumentParser(prog="tfphys-data", description="Generate and inspect tfphys data files.")
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("info", help="validate a data file of any family and summarise its content")
    i.add_argument("file")
    for command in registry.data_commands():
        c = sub.add_parser(command.name, help=command.help, aliases=list(command.aliases))
        command.add_arguments(c)
        c.set_defaults(data_command=command)
    return p


def _data(args: argparse.Namespace) -> int:
    if args.command != "info":
        print(args.data_command.run(args))
        return 0
    path = Path(args.file)
    if not path.is_file():
        raise TfphysError(f"data file {path} does not exist")
    for kind in registry.file_kinds():
        if kind.recognises(path):
            print(kind.summary(path))
            return 0
    known = ", ".join(kind.name for kind in registry.file_kinds())
    raise TfphysError(f"{path} is not a tfphys data file of a known kind ({known})")


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
    runs = [Path(r) for r in args.runs]
    cfgs = [_run_config(r) for r in runs]
    _import_tensorflow_quietly()

    spec = registry.get(cfgs[0]["model_name"])
    if spec.evaluate is None:
        raise TfphysError(f"model {spec.name!r} has no evaluation yet")
    if len(runs) > 1 and not spec.compares_runs:
        raise TfphysError(f"{spec.name} runs are evaluated one at a time; give one run dir")
    if args.data is not None and not Path(args.data).is_file():
        raise TfphysError(f"data file {args.data} does not exist")
    out = Path(args.out) if args.out else runs[0] / "eval"
    data = Path(args.data) if args.data else None
    others = list(zip(runs[1:], cfgs[1:]))
    report = (spec.evaluate(runs[0], cfgs[0], out, data, args.seed, others=others) if spec.compares_runs
              else spec.evaluate(runs[0], cfgs[0], out, data, args.seed))
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
