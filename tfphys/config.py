"""TOML configurations: one file per named model in ``models/``, resolved and saved in the run dir.

A config is a plain nested ``dict`` with the tables ``[data]``, ``[pipeline]``, ``[model]`` and
``[train]``. Command-line options override single keys; the resolved dict is written to
``DIR/config.toml`` so that a run can always be reproduced and resumed.
"""

from __future__ import annotations

import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from tfphys.errors import TfphysError

SECTIONS = ("data", "pipeline", "model", "train")


def models_dir() -> Path:
    """The folder holding ``MODEL.toml`` files: ``$TFPHYS_MODELS`` or the repository's ``models/``."""
    env = os.environ.get("TFPHYS_MODELS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "models"


def default_config_path(model: str) -> Path:
    return models_dir() / f"{model}.toml"


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML config, with one clear error for a missing or malformed file."""
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
            raise TfphysError(f"config file {path}: [{section}] must be a table, got {value!r}")
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


def save(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    with Path(path).open("wb") as fh:
        tomli_w.dump(cfg, fh)
