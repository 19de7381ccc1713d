"""TOML configurations: one file per named model in ``models/``, checked whole against the model's
schema, resolved (every default filled in) and saved in the run dir.

A config is a plain nested ``dict`` with the tables ``[data]``, ``[pipeline]``, ``[model]``,
``[train]`` and, for a family that has one, ``[eval]``. Every key of every table is declared once,
with its type and default, in the model's *schema* (:attr:`tfphys.registry.ModelSpec.schema`):

* the core declares ``[data] path`` and the ``[train]`` keys (:data:`DATA`, :data:`TRAIN`);
* each family declares its ``[data]``, ``[pipeline]`` (and ``[eval]``) keys in its ``__init__.py``
  with :class:`Key`;
* ``[model]`` keys come from the build function's signature (:func:`model_keys`: the defaults are
  the signature's, the types its annotations or, without one, the default's type). Two builder
  parameters are not config keys: ``seed`` receives the run's ``[train] seed`` (one seed per run:
  :func:`build_kwargs`) and ``name`` is the model's own.

:func:`resolve` checks a config against the schema — an unknown section or key, or a value of the
wrong type, is one :class:`~tfphys.errors.TfphysError` line naming the section and the key (with
the closest valid name, :mod:`difflib`), unknown keys before missing required ones — and returns
it *whole*: every key of the schema, the config's value or the default. A user config is whole by
itself (the schema's defaults fill what it leaves out; it is not laid over ``models/NAME.toml``).
Sub-tables (``[train.optimizer]``) are not looked into: Keras validates them.

The trainer saves the resolved config to ``RUN/config.toml`` (plus ``model_name`` and the data
path), so ``tfphys-train NAME --config RUN/config.toml`` repeats the run. TOML has no ``None``: an
optional key whose value is ``None`` (the default of e.g. ``[data] max_events``) is left out of the
file (:func:`save`), and resolving the file gives it back.
"""

from __future__ import annotations

import collections.abc
import copy
import difflib
import functools
import inspect
import json
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from tfphys import atomic
from tfphys.errors import TfphysError

SECTIONS = ("data", "pipeline", "model", "train")
#: the sections a schema may have, in the order they are checked and saved
ALL_SECTIONS = ("data", "pipeline", "model", "train", "eval")


class _Required:
    def __repr__(self):
        return "REQUIRED"


#: the default of a key that has none: the config must give it
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Key:
    """One key of a config section: its type, its default (:data:`REQUIRED`: none) and a help line.

    ``type``: ``int``, ``float`` (an integer is accepted), ``bool``, ``str``, ``dict`` (a sub-table,
    not looked into), ``list[int]``, ``list[list[int]]``…, ``X | None`` (optional), ``typing.Any``.
    ``subkeys``: for a sub-table, () -> the names it accepts (for "did you mean" only).
    """

    type: Any
    default: Any = REQUIRED
    help: str = ""
    subkeys: Callable[[], tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Moved:
    """A key that is no longer one of this section: refused, with where its value comes from now."""

    to: str
    why: str = ""


def _optimizer_arguments() -> tuple[str, ...]:
    """The argument names of Keras' optimizers (for "did you mean [train.optimizer] …")."""
    import keras

    names = {"class_name"}
    for cls in ("Adam", "AdamW", "SGD", "RMSprop", "Nadam", "Adamax", "Adagrad", "Adadelta", "Lion", "Ftrl"):
        optimizer = getattr(keras.optimizers, cls, None)
        if optimizer is not None:
            names.update(p for p in inspect.signature(optimizer.__init__).parameters if p not in ("self", "kwargs"))
    return tuple(sorted(names))


#: ``[data]`` keys of every model
DATA: dict[str, Key] = {
    "path": Key(str | None, None, "the data file (--data); the trainer saves the one it read"),
}

#: ``[train]`` keys of every model
TRAIN: dict[str, Key] = {
    "epochs": Key(int, REQUIRED, "training epochs (--epochs)"),
    "seed": Key(int, 0, "the run's one seed (--seed): splits, initialisation, chains, sampling"),
    "optimizer": Key(dict, {"class_name": "Adam"},
                     "a Keras optimizer: class_name and its arguments (validated by Keras)",
                     subkeys=_optimizer_arguments),
}

#: builder parameters that are not ``[model]`` keys (``seed``: the run's, see :func:`build_kwargs`)
NOT_MODEL_KEYS = ("seed", "name")


# ------------------------------------------------------------------------------------------ types
def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_list(tp) -> bool:
    return tp is list or typing.get_origin(tp) in (list, tuple, collections.abc.Sequence)


def _element(tp):
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return args[0] if args else Any


_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("a boolean", "booleans"),
          str: ("a string", "strings"), dict: ("a table", "tables")}


def describe(tp, plural: bool = False) -> str:
    """``list[int]`` → "a list of integers" (what an error message says was expected)."""
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(describe(a, plural) for a in args)
    if _is_list(tp):
        inner = _element(tp)
        head = "lists" if plural else "a list"
        return head if inner is Any else f"{head} of {describe(inner, True)}"
    if tp in _NAMES:
        return _NAMES[tp][1 if plural else 0]
    return "values" if plural else "a value"


def _conforms(value, tp) -> bool:
    if tp is Any:
        return True
    if _is_union(tp):
        return any(_conforms(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if _is_list(tp):
        inner = _element(tp)
        return isinstance(value, (list, tuple)) and all(_conforms(v, inner) for v in value)
    if tp is float:
        return type(value) in (int, float)
    if tp in (int, bool, str):
        return type(value) is tp
    if tp is dict:
        return isinstance(value, dict)
    return True  # a type this module does not check


def show(value) -> str:
    """A value as it is written in TOML (``"32"``, ``true``, ``[1, 2]``) for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _toml_value(value):
    """Tuples → lists, recursively (a default as TOML holds it)."""
    if isinstance(value, (list, tuple)):
        return [_toml_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _toml_value(v) for k, v in value.items()}
    return value


def _annotation(tp):
    """A builder annotation (``Sequence[int]``, ``int | None``) → a schema type."""
    if _is_union(tp):
        args = tuple(_annotation(a) for a in typing.get_args(tp))
        return functools.reduce(lambda a, b: a | b, args)
    if _is_list(tp):
        inner = _element(tp)
        return list[_annotation(inner)] if inner is not Any else list
    if tp in (int, float, bool, str, dict, type(None)):
        return tp
    return None  # not understood: infer from the default


def _inferred(default):
    if isinstance(default, (bool, int, float, str)):
        return type(default)
    if isinstance(default, (list, tuple)):
        kinds = {_inferred(v) for v in default}
        return list[kinds.pop()] if len(kinds) == 1 and None not in kinds else list
    if isinstance(default, dict):
        return dict
    return Any


def model_keys(build: Callable[..., Any], exclude: tuple[str, ...] = ()) -> dict[str, Key]:
    """The ``[model]`` keys of a build function: its parameters (but ``seed``, ``name`` and
    ``exclude``), with the signature's defaults and the annotations' types (or the default's)."""
    try:
        hints = typing.get_type_hints(build)
    except Exception:  # an annotation that does not evaluate: types from the defaults
        hints = {}
    keys = {}
    for p in inspect.signature(build).parameters.values():
        if p.name in NOT_MODEL_KEYS or p.name in exclude or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = REQUIRED if p.default is p.empty else _toml_value(p.default)
        tp = _annotation(hints[p.name]) if p.name in hints else None
        if tp is None:
            tp = _inferred(default) if default is not REQUIRED else Any
            if default is None:
                tp = Any
        keys[p.name] = Key(tp, default, f"{build.__name__}({p.name}=…)")
    return keys


# ----------------------------------------------------------------------------------------- schema
#: the key ``"*"`` of a section: any other key is accepted as given (a spec that declares no schema)
ANY_KEY = "*"


def schema_of(spec) -> dict[str, dict[str, Key | Moved]]:
    """The whole schema of ``spec``: section → {key: Key}. A (third-party) spec that declares no
    schema gets the core keys and its build signature's; its other keys are taken as given
    (:data:`ANY_KEY`)."""
    own = dict(spec.schema or {})
    declared = bool(own)
    out: dict[str, dict[str, Key | Moved]] = {}
    for section in ALL_SECTIONS:
        core = {"data": DATA, "train": TRAIN}.get(section, {})
        if section == "model":
            out[section] = dict(own.get("model") or model_keys(spec.build))
        elif section in own:
            out[section] = {**core, **own[section]}
        elif declared and section != "eval":
            out[section] = dict(core)
        elif not declared:
            out[section] = {**core, **({} if section == "train" else {ANY_KEY: Key(Any, None)})}
    unknown = sorted(set(own) - set(ALL_SECTIONS))
    if unknown:
        raise TfphysError(f"the schema of {spec.name} has unknown section(s) {', '.join(unknown)}")
    return out


def _suggest(key: str, section: str, schema: Mapping[str, Mapping]) -> str:
    """"; did you mean X?" or "(keys of [section]: …)"."""
    table = schema.get(section) or {}
    keys = [k for k, v in table.items() if isinstance(v, Key) and k != ANY_KEY]
    close = difflib.get_close_matches(key, keys, n=1)
    if close:
        return f"; did you mean {close[0]}?"
    elsewhere: dict[str, str] = {}
    for sub, k in table.items():  # a sub-table's keys ([train.optimizer] learning_rate)
        if isinstance(k, Key) and k.subkeys is not None:
            for name in k.subkeys():
                elsewhere.setdefault(name, f"[{section}.{sub}] {name}")
    for other, otable in schema.items():
        if other != section and otable:
            for name, k in otable.items():
                if isinstance(k, Key) and name != ANY_KEY:
                    elsewhere.setdefault(name, f"[{other}] {name}")
    close = [key] if key in elsewhere else difflib.get_close_matches(key, list(elsewhere), n=1)
    if close:
        return f"; did you mean {elsewhere[close[0]]}?"
    return f" (keys of [{section}]: {', '.join(keys)})" if keys else f" ([{section}] has no keys)"


def _unknown_key(section: str, key: str, schema) -> str:
    moved = (schema.get(section) or {}).get(key)
    if isinstance(moved, Moved):
        return f"[{section}] {key}: unknown key; did you mean {moved.to}?" + (f" ({moved.why})" if moved.why else "")
    return f"[{section}] {key}: unknown key" + _suggest(key, section, schema)


def resolve(spec, cfg: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """``cfg`` checked whole against ``spec``'s schema and completed with its defaults.

    Raises one :class:`TfphysError` line for the first problem, in this order: an unknown section,
    an unknown key, a value of the wrong type, a missing required key (``partial``: a missing
    required key is left out instead, e.g. for a hand-made run dir read by ``tfphys-eval``).
    Values are kept as given (an integer where a number is expected stays an integer); the
    result holds ``model_name`` when ``cfg`` does, and ``None`` for optional keys left unset.
    """
    if not isinstance(cfg, Mapping):
        raise TfphysError(f"a config is a table of sections, got {show(cfg)}")
    schema = schema_of(spec)
    sections = [s for s in ALL_SECTIONS if s in schema]
    for name, value in cfg.items():
        if name == "model_name":
            if not isinstance(value, str):
                raise TfphysError(f"model_name: expected a string, got {show(value)}")
            if value != spec.name:
                raise TfphysError(f"model_name = {show(value)}: this config is of the model {value}, not "
                                  f"{spec.name}; train {value} or remove model_name")
        elif name not in sections:
            if isinstance(value, dict):
                close = difflib.get_close_matches(name, sections, n=1)
                hint = (f"; did you mean [{close[0]}]?" if close
                        else f" (sections of {spec.name}: {', '.join(sections)})")
                raise TfphysError(f"[{name}]: unknown section{hint}")
            hint = _suggest(name, "", {"": {}, **schema}).replace(" ([] has no keys)", "")
            raise TfphysError(f"{name}: unknown key at the top of the config (keys belong in a section)"
                              + (hint or f"; sections: {', '.join(sections)}"))
        elif not isinstance(value, dict):
            raise TfphysError(f"[{name}] must be a table, got {show(value)}")
    for section in sections:  # unknown keys first ...
        table = schema[section]
        for key in cfg.get(section, {}):
            if not isinstance(table.get(key), Key) and ANY_KEY not in table:
                raise TfphysError(_unknown_key(section, key, schema))
    for section in sections:  # ... then types
        given = cfg.get(section, {})
        for key, spec_key in (schema[section] or {}).items():
            if isinstance(spec_key, Key) and key in given and not _conforms(given[key], spec_key.type):
                raise TfphysError(f"[{section}] {key}: expected {describe(spec_key.type)}, got {show(given[key])}")
    out: dict[str, Any] = {}
    if "model_name" in cfg:
        out["model_name"] = cfg["model_name"]
    for section in sections:  # ... then required keys, and the defaults
        given = cfg.get(section, {})
        table = schema[section]
        resolved = {}
        for key, spec_key in table.items():
            if not isinstance(spec_key, Key) or key == ANY_KEY:
                continue
            if key in given:
                resolved[key] = copy.deepcopy(given[key])
            elif spec_key.default is not REQUIRED:
                resolved[key] = copy.deepcopy(spec_key.default)
            elif not partial:
                raise TfphysError(f"config is missing [{section}] {key}")
        if ANY_KEY in table:
            resolved.update((k, copy.deepcopy(v)) for k, v in given.items() if k not in resolved)
        out[section] = resolved
    return out


def validate(cfg: Mapping[str, Any], spec=None, *, partial: bool = True) -> dict[str, Any]:
    """:func:`resolve` for a config that names its model (``model_name``, a run's saved config)."""
    if spec is None:
        from tfphys import registry

        name = cfg.get("model_name") if isinstance(cfg, Mapping) else None
        if not name:
            raise TfphysError("the config names no model (no model_name key)")
        spec = registry.get(str(name))
    return resolve(spec, cfg, partial=partial)


def build_kwargs(spec, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The build function's arguments: the resolved ``[model]`` table, plus ``seed`` = the run's
    ``[train] seed`` when the builder takes one (chains, masks, priors: one seed per run)."""
    kwargs = dict(cfg["model"])
    if "seed" in inspect.signature(spec.build).parameters:
        kwargs["seed"] = int(cfg["train"]["seed"])
    return kwargs


# ------------------------------------------------------------------------------------------ files
def models_dir() -> Path:
    """The folder holding ``MODEL.toml`` files: ``$TFPHYS_MODELS`` or the repository's ``models/``."""
    env = os.environ.get("TFPHYS_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def default_config_path(model: str) -> Path:
    return models_dir() / f"{model}.toml"


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML config (not yet checked: see :func:`resolve`), with one clear error for a
    missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise TfphysError(f"config file {path} does not exist")
    try:
        with path.open("rb") as fh:
            cfg = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise TfphysError(f"config file {path} is not valid TOML: {err}") from None
    for section in SECTIONS:
        value = cfg.setdefault(section, {})
        if not isinstance(value, dict):
            raise TfphysError(f"config file {path}: [{section}] must be a table, got {show(value)}")
    return cfg


def override(cfg: dict[str, Any], section: str, key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``cfg[section][key] = value`` (``None`` leaves it unchanged)."""
    if value is None:
        return cfg
    out = copy.deepcopy(cfg)
    out.setdefault(section, {})[key] = value
    return out


def require(cfg: dict[str, Any], section: str, key: str) -> Any:
    """``cfg[section][key]``, or a TfphysError naming the missing key."""
    try:
        return cfg[section][key]
    except KeyError:
        raise TfphysError(f"config is missing [{section}] {key}") from None


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def save(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``cfg`` as TOML (temp + rename: never half-written); keys whose value is ``None``
    (optional keys left unset) are left out."""
    atomic.write_text(path, tomli_w.dumps(_without_none(cfg)))
