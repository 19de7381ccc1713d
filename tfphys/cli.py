"""Command-line entry points: ``tfphys-train``, ``tfphys-data``, ``tfphys-eval`` and ``tfphys-score``
(``tfphys-export`` is :mod:`export.cli`, on the same helpers).

Thin by design: parse, call the library, report. A :class:`~tfphys.errors.TfphysError` (bad file,
bad config, unknown name) is printed as one line ``PROG: error: MESSAGE`` with exit status 1;
argparse usage errors exit with 2; anything else is a bug and keeps its traceback.

One vocabulary for the five commands: a command that does several things has subcommands
(``tfphys-data info|darkshowers|import|cbae|albus``, ``tfphys-score shard|merge``); ``RUN`` is a
``tfphys-train`` run dir, opened by :mod:`tfphys.rundir` everywhere; ``--data FILE`` is a data file
read, ``--out`` what is written; ``--seed`` is a seed (default 0; ``tfphys-train --seed`` overrides
``[train] seed``); ``--threads T`` is TensorFlow's (and LiteRT's) threads per process (default: all
cores, except ``tfphys-export``, which times at 1 thread, the HLT setting); ``--workers K`` is
worker processes (default: all cores); ``--set SECTION.KEY=VALUE`` overrides one key of a config.
"""

from __future__ import annotations

import argparse
import copy
import errno
import os
import re
import signal
import sys
import tomllib
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
    if hasattr(signal, "SIGXFSZ"):  # over a file-size limit: an OSError (EFBIG) and one line, not a core dump
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return main(args)
    except TfphysError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished epochs/chunks are kept", file=sys.stderr)
        return 130
    except OSError as err:
        message = _write_error(err)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 1
    except Exception as err:
        # A TfphysError raised inside a tf.data numpy_function reaches us wrapped in a TF error.
        found = _WRAPPED.search(str(err)) if type(err).__module__.startswith("tensorflow") else None
        if found is None:
            raise
        print(f"{prog}: error: {found.group(1).strip()}", file=sys.stderr)
        return 1


#: errno values of a place that cannot take a write: full disk or quota, file-size limit, read-only
#: file system, no permission
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
_H5_ERRNO = re.compile(r"errno = (\d+)")


def _write_error(err: OSError) -> str | None:
    """One line for an OSError of a place that cannot be written (h5py's carry the errno in the
    message), naming the path; None for any other OSError (a bug: it keeps its traceback). Outputs
    are written under temporary names (:mod:`tfphys.atomic`), so nothing earlier is lost."""
    code = err.errno
    if code is None:
        found = _H5_ERRNO.search(str(err))
        code = int(found.group(1)) if found else None
    if code not in _WRITE_ERRNOS:
        return None
    name = err.filename or (re.search(r"name = '([^']+)'", str(err)) or [None, None])[1]
    from tfphys.atomic import final_of

    where = f" {final_of(name)}" if name else ""
    return (f"cannot write{where}: {os.strerror(code)} (errno {errno.errorcode.get(code, code)}); "
            "earlier outputs are intact, nothing half-written was kept")


THREADS_HELP = "TensorFlow threads per process (default: all cores; e.g. cores ÷ processes on one machine)"
WORKERS_HELP = "worker processes (default: all cores)"


def add_seed(p: argparse.ArgumentParser, what: str) -> None:
    """``--seed S`` (default 0), the same option in every command."""
    p.add_argument("--seed", type=int, default=0, metavar="S", help=f"seed of {what} (default 0)")


def add_threads(p: argparse.ArgumentParser, *, default: int | None = None, text: str = THREADS_HELP) -> None:
    """``--threads T``: TensorFlow's (and LiteRT's) intra- and inter-op threads per process."""
    p.add_argument("--threads", type=int, default=default, metavar="T", help=text)


def check_count(option: str, value: int | None) -> None:
    """``--threads``/``--workers``: None (the default) or a positive count."""
    if value is not None and value < 1:
        raise TfphysError(f"{option} must be a positive number, got {value}")


#: the runtime was started by :func:`_import_tensorflow_quietly` (``import tfphys`` imports
#: TensorFlow but starts no runtime: the first command still has to, quietly)
_DEVICES_STARTED = False


def _import_tensorflow_quietly(threads: int | None = None, strategy: str | None = None):
    """Import TensorFlow and initialise its devices without its C++ start-up notes (oneDNN,
    "could not find cuda drivers"), which are noise on a CPU machine.

    ``threads``: limit TensorFlow's intra- and inter-op thread pools (set before the runtime
    starts; e.g. so that Keras is timed on as many cores as LiteRT). ``import tfphys`` imports
    TensorFlow but starts no runtime, so the limit holds in a command; in a process whose runtime
    already runs (a test calling several commands), it stays as it was.
    ``strategy``: a :mod:`tfphys.distribute` strategy name; the strategy is created first (it
    must precede every other TensorFlow op) and returned.
    """
    check_count("--threads", threads)
    global _DEVICES_STARTED
    if _DEVICES_STARTED and strategy is None and threads is None:
        return None
    from tfphys.console import quiet

    made = None
    with quiet():
        import tensorflow as tf

        if threads is not None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:  # the runtime already started in this process
                pass
        if strategy is not None:
            from tfphys.distribute import make_strategy

            made = make_strategy(strategy)
        tf.config.list_logical_devices()  # starts the runtime here, where its notes are parked
    _DEVICES_STARTED = True
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
    p.add_argument("--data", metavar="FILE",
                   help="HDF5 data file (default: a cached dataset generated with a fixed seed)")
    p.add_argument("--epochs", type=int, help="override [train] epochs")
    p.add_argument("--batch-size", type=int, help="override [pipeline] batch_size")
    p.add_argument("--out", metavar="DIR", help="run dir (default: runs/MODEL)")
    p.add_argument("--seed", type=int, metavar="S", help="override [train] seed (the seed of the run)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    add_threads(p)
    from tfphys.distribute import STRATEGIES

    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy: default (one process), mirrored (one replica per local GPU; "
                        "one on a CPU-only machine), multiworker (one process per worker, cluster from "
                        "TF_CONFIG or srun; see README, Scaling out). --batch-size is the global batch")
    return p


def _train(args: argparse.Namespace) -> int:
    strategy = _import_tensorflow_quietly(threads=args.threads, strategy=args.strategy)
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
    p = argparse.ArgumentParser(
        prog="tfphys-data",
        description="Generate and inspect tfphys data files: 'tfphys-data info FILE' checks a file of any "
                    "family; the other subcommands write one (see 'tfphys-data SUBCOMMAND -h').")
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
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
    p.add_argument("--data", metavar="FILE",
                   help="evaluation data file (default: the model family's cached test sample)")
    p.add_argument("--out", metavar="DIR", help="report dir (default: FIRST_RUN/eval)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="sets",
                   help="override a key of the run's saved config for this evaluation only; VALUE in TOML "
                        "(5000, 1e-3, true, [2, 3], \"text\"); repeatable, e.g. --set eval.trajectories=5000 "
                        "--set 'eval.betas=[2, 3]' (leapfrog sizes: [eval] of models/leapfrog.toml)")
    add_seed(p, "the evaluation's random draws")
    add_threads(p)
    return p


_MISSING = object()


def _lookup(cfg: dict, path: tuple[str, ...]):
    for part in path:
        if not isinstance(cfg, dict) or part not in cfg:
            return _MISSING
        cfg = cfg[part]
    return cfg


def parse_set(text: str) -> tuple[tuple[str, ...], object]:
    """``"eval.betas=[2, 3]"`` → ``(("eval", "betas"), [2, 3])``: a dotted key and a TOML value."""
    key, sep, raw = text.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or len(path) < 2 or not all(path) or not raw.strip():
        raise TfphysError(f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. eval.trajectories=5000")
    try:
        parsed = tomllib.loads(f"value = {raw.strip()}")
    except tomllib.TOMLDecodeError:
        parsed = {}
    if set(parsed) != {"value"}:
        shown = raw.strip().replace("\n", "\\n")
        raise TfphysError(f"--set {'.'.join(path)}={shown}: not a TOML value (numbers 5000 or 1e-3, "
                          f"true/false, lists [2, 3], strings in quotes \"text\")")
    return path, parsed["value"]


def _kind(value) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def apply_sets(cfg: dict, sets: Sequence[str], spec=None) -> dict:
    """A copy of ``cfg`` (a run's resolved config) with every ``SECTION.KEY=VALUE`` of ``sets`` applied.

    ``SECTION.KEY`` is checked by the model's schema (:func:`tfphys.config.validate` with ``spec``):
    an unknown section or key, or a value of the wrong type, is refused with its message. A key of a
    sub-table (``train.optimizer.learning_rate``), which the schema does not look into, must be one
    the config has, with a value of the same kind (an integer may replace a number).
    """
    from tfphys import config as configs

    out = copy.deepcopy(cfg)
    for text in sets:
        path, value = parse_set(text)
        key = ".".join(path)
        current = _lookup(out, path)
        if isinstance(current, dict):
            raise TfphysError(f"--set {key}: [{key}] is a table; set its keys one by one ({key}.KEY=VALUE)")
        if len(path) > 2:
            if current is _MISSING:
                table = _lookup(out, path[:-1])
                known = f" (keys of [{'.'.join(path[:-1])}]: {', '.join(table)})" if isinstance(table, dict) else ""
                raise TfphysError(f"--set {key}: the run's config has no key {key}{known}")
            if isinstance(current, float) and type(value) is int:
                value = float(value)
            if current is not None and type(value) is not type(current):
                raise TfphysError(f"--set {key}={value!r}: expected {_kind(current)} like {current!r}, "
                                  f"got {_kind(value)}")
        table = out
        for part in path[:-1]:
            table = table.setdefault(part, {})
        table[path[-1]] = value
        if spec is not None:
            try:
                out = configs.validate(out, spec)
            except TfphysError as err:
                raise TfphysError(f"--set {key}: {err}") from None
    return out


def _eval(args: argparse.Namespace) -> int:
    """The first run's family evaluates; ``spec.evaluate(run, cfg, out, data, seed)`` gets the
    other runs as ``others=[(run, cfg), ...]`` (families that compare models accept it).
    ``--set`` applies to the config of every run given."""
    from tfphys import rundir

    runs = [rundir.open_run(r) for r in args.runs]
    cfgs = [apply_sets(run.config, args.sets, run.spec) for run in runs]
    runs = [run.path for run in runs]
    _import_tensorflow_quietly(threads=args.threads)

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
        description="Score a large file in shards, then merge them (see tfphys/scoring.py): 'tfphys-score "
                    "shard RUN --data FILE --out DIR --shard i/N' scores events [i·n/N, (i+1)·n/N) into "
                    "DIR/scores-IIIII-of-NNNNN.h5 (one process per shard, anywhere); 'tfphys-score merge DIR' "
                    "checks that every event was scored exactly once and writes DIR/scores.h5.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    s = sub.add_parser("shard", help="score one shard of a file with a trained model",
                       description="Score shard i of N of --data with the model of RUN into "
                                   "DIR/scores-IIIII-of-NNNNN.h5.")
    s.add_argument("run", metavar="RUN", help="tfphys-train run dir (dark-shower model or albus)")
    s.add_argument("--data", required=True, metavar="FILE",
                   help="HDF5 file to score (dark-shower events or ALBUS maps)")
    s.add_argument("--out", required=True, metavar="DIR", help="output dir for the shard files")
    s.add_argument("--shard", default="0/1", metavar="i/N", help="score shard i of N (default 0/1: everything)")
    add_threads(s)
    s.add_argument("--runtime", choices=("keras", "litert"), default="keras",
                   help="keras (default, the reference): model.keras; litert: the run's tfphys-export "
                        "files, one LiteRT interpreter per process (--threads, default 1); run one shard per core")
    s.add_argument("--precision", choices=("float32", "float16"), default="float32",
                   help="with --runtime litert: the exported files read (default float32, the scores of "
                        "Keras to ~1e-5; float16: the HLT's file)")
    add_seed(s, "the Monte-Carlo scores, CoDVAE's KL")
    m = sub.add_parser("merge", help="merge the shard files of DIR into DIR/scores.h5",
                       description="Check that the shard files of DIR score every event exactly once "
                                   "and write DIR/scores.h5 in file order.")
    m.add_argument("dir", metavar="DIR", help="the --out dir of the shards")
    return p


def _score(args: argparse.Namespace) -> int:
    from tfphys import scoring

    if args.command == "merge":
        path = scoring.merge(args.dir)
        import h5py

        with h5py.File(path, "r") as f:
            print(f"merged {f.attrs['merged_shards']} shard(s): {f.attrs['n_events']} events, each scored "
                  f"once; scores: {', '.join(f['scores'])}")
        print(f"scores: {path}")
        return 0
    shard = scoring.parse_shard(args.shard)
    _import_tensorflow_quietly(threads=args.threads)
    path = scoring.score_shard(args.run, args.data, args.out, shard=shard, seed=args.seed, runtime=args.runtime,
                               precision=args.precision, threads=args.threads)
    print(f"shard {shard[0]}/{shard[1]}: {path}")
    return 0


def score_main(argv: Sequence[str] | None = None) -> int:
    parser = score_parser()
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]
    if any(a == "--merge" or a.startswith("--merge=") for a in given):
        parser.error("--merge DIR is now a subcommand: tfphys-score merge DIR "
                     "(and scoring: tfphys-score shard RUN --data FILE --out DIR)")
    return _run("tfphys-score", _score, parser, argv)
