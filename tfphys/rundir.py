"""Open a ``tfphys-train`` run dir: one place, one set of messages, for every command that takes a run.

A run dir holds ``config.toml`` (the resolved config, ``model_name`` included) and, once training
saved a model, ``model.keras`` (see :mod:`tfphys.training`); ``backup/`` marks a run that is not
finished (its best-so-far ``model.keras`` is not taken for a result). :func:`open_run` checks them and
returns a :class:`Run`; :meth:`Run.load_model` loads the model through
:func:`tfphys.registry.load_model` (safe mode, every family's layers known), so a missing,
truncated or foreign file is one :class:`~tfphys.errors.TfphysError` line wherever it is met.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from tfphys import config as configs
from tfphys import registry
from tfphys.errors import TfphysError

CONFIG = "config.toml"
MODEL = "model.keras"
#: present while a run is unfinished (the trainer's resumable state; removed when training ends)
BACKUP = "backup"


@dataclass(frozen=True)
class Run:
    path: Path
    spec: registry.ModelSpec
    config: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    def load_model(self) -> keras.Model:
        """The run's trained model (not compiled)."""
        if not self.model_path.is_file():
            raise TfphysError(f"{self.path} holds no trained model ({MODEL}); is its training finished?")
        return registry.load_model(self.model_path)


def read_config(path) -> dict[str, Any]:
    """The resolved config of run dir ``path``: it must name a model, and it is checked against that
    model's schema and completed with its defaults (:func:`tfphys.config.validate`; a hand-made run
    dir may leave out required keys such as ``[train] epochs``)."""
    path = Path(path)
    if not path.is_dir():
        raise TfphysError(f"run dir {path} does not exist" if not path.exists() else f"{path} is not a run dir")
    if not (path / CONFIG).is_file():
        raise TfphysError(f"{path} is not a tfphys-train run dir: it has no {CONFIG}")
    cfg = configs.load(path / CONFIG)
    if not cfg.get("model_name"):
        raise TfphysError(f"{path / CONFIG} names no model (no model_name key)")
    try:
        return configs.validate(cfg, registry.get(str(cfg["model_name"])))
    except TfphysError as err:
        raise TfphysError(f"{path / CONFIG}: {err}") from None


def open_run(path, *, need_model: bool = True) -> Run:
    """Run dir ``path`` → :class:`Run` (spec, config); ``need_model``: it must hold ``model.keras``."""
    path = Path(path)
    cfg = read_config(path)
    run = Run(path, registry.get(str(cfg["model_name"])), cfg)
    if need_model and (path / BACKUP).is_dir():
        raise TfphysError(f"{path} is an unfinished run ({BACKUP}/ holds its last finished epoch); rerun "
                          "the same tfphys-train command to finish it, or another process is still training it")
    if need_model and not run.model_path.is_file():
        raise TfphysError(f"{path} holds no trained model ({MODEL}); is its training finished?")
    return run
