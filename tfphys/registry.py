"""The model registry: a name (as in ``tfphys-train NAME``) → its :class:`ModelSpec`.

The registry knows no family by name. Each family — one package per paper, built in or installed
by a third party — declares a :class:`Family` (its specs, its ``tfphys-data`` commands, the data
files it reads) and advertises it in the ``tfphys.families`` entry-point group::

    [options.entry_points]
    tfphys.families =
        mypaper = mypackage:FAMILY

:func:`families` loads every advertised family once (which also registers the family's Keras
layers, losses and metrics for ``keras.saving.load_model``); :func:`get` and :func:`names` look
models up among them. A family's :class:`ModelSpec` states what its model can do in explicit
fields (``reads_data``, ``exportable``, ``compares_runs``, ``single_replica``, ``evaluate``,
``scorer``), which the commands check before they write anything.
"""

from __future__ import annotations

import functools
import inspect
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import keras

from tfphys.errors import TfphysError

ENTRY_POINT_GROUP = "tfphys.families"


@dataclass(frozen=True)
class Scorer:
    """How ``tfphys-score`` scores a file in chunks with a model of this spec."""

    #: the kind of data file scored (as in :class:`FileKind`), e.g. "darkshowers"
    file_kind: str
    #: events per chunk read, scored and kept in memory at a time
    chunk: int
    #: (path) -> number of events; validates the file and raises a TfphysError if it is not one
    n_events: Callable[[Path], int]
    #: per-event columns of the data file copied beside the scores
    columns: tuple[str, ...]
    #: (model, spec, path, start, stop, seed) -> {score name: (stop - start,) array}
    score: Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class ModelSpec:
    """Everything the trainer, ``tfphys-eval``, ``tfphys-score`` and ``tfphys-export`` need to know
    about one named model."""

    name: str
    #: the family (paper) the model belongs to, e.g. "darkshowers"
    family: str
    #: (**[model] table) -> an uncompiled Keras model
    build: Callable[..., keras.Model]
    #: (cfg, data path or None, seed) -> (train, validation) ``tf.data`` datasets
    datasets: Callable[[dict[str, Any], Path | None, int], tuple[Any, Any]]
    loss: Callable[[], Any]
    metrics: Callable[[], list]
    #: (cfg, data path or None, seed) -> (:class:`tfphys.datasets.Epochs`, validation dataset): when
    #: set, the trainer trains on these epochs (each a pure function of seed and epoch, so a resumed
    #: run equals an uninterrupted one); else on ``datasets``' training set
    epochs: Callable[[dict[str, Any], Path | None, int], tuple[Any, Any]] | None = None
    monitor: str = "val_loss"
    mode: str = "min"
    description: str = ""
    #: the model trains on a data file (``--data`` or ``default_data``); False: it makes its own
    #: (a sampler's Markov chains), and a data file given to it is refused
    reads_data: bool = True
    #: (cfg) -> path of the default dataset (generated once with a fixed seed and cached)
    default_data: Callable[[dict[str, Any]], Path] | None = None
    #: ``tfphys-export`` converts it; when False, ``not_exportable`` says why
    exportable: bool = True
    not_exportable: str = ""
    #: (cfg, n, seed) -> model inputs from the training data (int8 calibration, validation)
    representative: Callable[[dict[str, Any], int, int], Any] | None = None
    #: (cfg, path or None, n_per_class, seed) -> (inputs, is_signal); None path: a default sample
    labelled_sample: Callable[[dict[str, Any], Path | None, int, int], tuple[Any, Any]] | None = None
    #: (cfg, path or None, n_per_class, seed) -> the class name of each event of ``labelled_sample``
    #: with the same arguments (e.g. "QCD", "SUEP 125 GeV"): ``tfphys-export``'s per-signal-point efficiencies
    sample_classes: Callable[[dict[str, Any], Path | None, int, int], Any] | None = None
    #: (inputs, model outputs) -> per-event score, larger = more anomalous
    anomaly_score: Callable[[Any, Any], Any] | None = None
    #: what ``tfphys-eval RUN [RUN ...]`` runs: (run_dir, cfg, out_dir, data or None, seed, *,
    #: others=[(run_dir, cfg), ...]) -> the report file it wrote
    evaluate: Callable[..., Path] | None = None
    #: ``tfphys-eval`` accepts several runs of this family together (``others``)
    compares_runs: bool = False
    #: non-empty: why the model trains on one replica only (a multi-replica strategy is refused)
    single_replica: str = ""
    #: sharded per-event scoring (``tfphys-score``); None: the model has no per-event score
    scorer: Scorer | None = None
    #: keys, types and defaults of every config section (see :mod:`tfphys.config`)
    schema: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileKind:
    """A kind of data file a family writes, for ``tfphys-data info``."""

    name: str
    #: (path) -> True when the file is of this kind (cheap: attributes only)
    recognises: Callable[[Path], bool]
    #: (path) -> a validated, human-readable summary
    summary: Callable[[Path], str]


@dataclass(frozen=True)
class DataCommand:
    """A ``tfphys-data NAME`` subcommand a family contributes (its generators and importers)."""

    name: str
    help: str
    #: (argparse parser) -> None: adds the subcommand's arguments
    add_arguments: Callable[[Any], None]
    #: (parsed arguments) -> the line(s) to print
    run: Callable[[Any], str]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    """One paper's models and data, as a package declares them."""

    name: str
    description: str
    specs: tuple[ModelSpec, ...]
    data_commands: tuple[DataCommand, ...] = ()
    file_kinds: tuple[FileKind, ...] = ()


@functools.cache
def families() -> dict[str, Family]:
    """Every family advertised in the ``tfphys.families`` entry-point group, loaded once."""
    found: dict[str, Family] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        family = ep.load()
        if callable(family) and not isinstance(family, Family):
            family = family()
        if not isinstance(family, Family):
            raise TfphysError(f"entry point {ep.name} = {ep.value} in {ENTRY_POINT_GROUP} is not a "
                              f"tfphys.registry.Family (got {type(family).__name__})")
        if family.name in found:
            raise TfphysError(f"two packages declare the model family {family.name!r}")
        found[family.name] = family
    if not found:
        raise TfphysError(f"no model families found in the {ENTRY_POINT_GROUP!r} entry-point group; "
                          f"is tfphys installed (pip install -e .)?")
    return found


@functools.cache
def _specs() -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for family in families().values():
        for spec in family.specs:
            if spec.name in specs:
                raise TfphysError(f"model {spec.name!r} is declared by the families "
                                  f"{specs[spec.name].family} and {spec.family}")
            if spec.family != family.name:
                raise TfphysError(f"model {spec.name!r} says family {spec.family!r} but is declared "
                                  f"by {family.name!r}")
            specs[spec.name] = spec
    return specs


def names() -> list[str]:
    return sorted(_specs())


def get(name: str) -> ModelSpec:
    specs = _specs()
    if name not in specs:
        raise TfphysError(f"unknown model {name!r}; known models: {', '.join(sorted(specs))}")
    return specs[name]


def file_kinds() -> list[FileKind]:
    return [kind for family in families().values() for kind in family.file_kinds]


def data_commands() -> list[DataCommand]:
    return [command for family in families().values() for command in family.data_commands]


def load_model(path) -> keras.Model:
    """A trained ``model.keras`` (safe mode, not compiled), with one clear error if it is not one.

    Every family is loaded first (:func:`families`), so every family's layers are known.
    """
    families()
    path = Path(path)
    if not path.is_file():
        raise TfphysError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a file that is there
        raise TfphysError(f"could not load a Keras model from {path}: it is not a .keras zip archive "
                          f"({path.stat().st_size} bytes; truncated or corrupt?)")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfphysError(f"could not load a Keras model from {path}: {first}") from None


def build(spec: ModelSpec, model_cfg: dict[str, Any]) -> keras.Model:
    """Build ``spec``'s model from a ``[model]`` table, refusing unknown keys by name."""
    accepted = inspect.signature(spec.build).parameters
    unknown = sorted(set(model_cfg) - set(accepted))
    if unknown:
        raise TfphysError(
            f"[model] of {spec.name} has unknown key(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    return spec.build(**model_cfg)
