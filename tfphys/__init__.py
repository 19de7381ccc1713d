"""tfphys — TensorFlow/Keras models for machine learning in physics.

One package per paper on a small shared core::

    tfphys.darkshowers   CoDAE / CAE / CoDVAE and the §5.2 baselines (dark showers at the CMS HLT)
    tfphys.albus         ALBUS (long-duration gravitational-wave bursts)
    tfphys.cbae          CBAE (constrained bottleneck autoencoder)
    tfphys.leapfrog      LeapfrogLayers (trainable HMC for 2D U(1))

    core: registry, training, config, rundir, hdf5, cache, datasets, metrics, reports,
          distribute, scoring, layers, cli, console, errors

Importing ``tfphys`` loads every model family (:func:`tfphys.registry.families`: the built-in
four and any installed package's ``tfphys.families`` entry point), which registers their Keras
layers, losses and metrics: after ``import tfphys``, ``keras.saving.load_model(path,
safe_mode=True)`` loads a run of any registered model.
"""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) is noise for a physicist's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfphys.console import quiet  # noqa: E402
from tfphys.errors import TfphysError  # noqa: E402

# TensorFlow writes its start-up notes (oneDNN, "could not find cuda drivers") straight to the file
# descriptors, whatever TF_CPP_MIN_LOG_LEVEL says; quiet() parks them (and replays them on a crash).
with quiet():
    from tfphys import registry

    registry.families()

__version__ = "0.1.0"
__all__ = ["TfphysError", "__version__", "registry"]

