"""Command-line entry points: ``tfphys-train``, ``tfphys-data`` and ``tfphys-eval``.

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


def _import_tensorflow_quietly(threads: int | None = None) -> None:
    """Import TensorFlow and initialise its devices without its C++ start-up notes (oneDNN,
    "could not find cuda drivers"), which are noise on a CPU machine.

    ``threads``: limit TensorFlow's intra- and inter-op thread pools (set before the runtime
    starts; e.g. so that Keras is timed on as many cores as LiteRT).
    """
    if "tensorflow" in sys.modules:
        return
    from tfphys.console import quiet

    with quiet():
        import tensorflow as tf

        if threads is not None:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.list_logical_devices()
    # Python-side notes such as "5 out of the last 15 calls … triggered tf.function retracing"
    # (every sub-model predicted once during an export) are not the user's business.
    tf.get_logger().setLevel("ERROR")


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
    return p


def _train(args: argparse.Namespace) -> int:
    _import_tensorflow_quietly()
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
                   resume=args.resume)
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
    g.add_argument("--generator", default="toy", help="event generator (default: toy, built in)")
    i = sub.add_parser("info", help="validate a data file and summarise its content")
    i.add_argument("file")
    return p


def _data(args: argparse.Namespace) -> int:
    if args.command == "generate":
        from tfphys.data.darkshowers import generate

        n = generate(args.process, args.n, args.out, mass_gev=args.mass, seed=args.seed,
                     generator=args.generator)
        print(f"wrote {n} events to {args.out}")
        return 0
    from tfphys.data.formats import summary

    print(summary(args.file))
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
