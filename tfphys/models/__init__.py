"""Keras models, one file per paper; :mod:`.registry` maps a model name to everything the trainer needs."""
