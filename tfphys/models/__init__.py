"""Keras models, one file per paper; :mod:`.registry` maps a model name to everything the trainer needs.

Importing this package registers tfphys' custom layers, losses and metrics with Keras, so a run dir's
model loads with ``import tfphys.models`` then ``keras.saving.load_model(path, safe_mode=True)``.
"""

from tfphys import layers as _layers  # noqa: F401  (registers serialisable layers)
from tfphys import losses as _losses  # noqa: F401  (registers losses and metrics)
