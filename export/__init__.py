"""Deployment toolchain behind ``tfphys-export``: builtin-ops TFLite conversion at float32, float16 or int8
(:mod:`export.convert`), validation against the Keras model and batch-1 LiteRT timings
(:mod:`export.exporter`, :mod:`export.latency`), and the JSON/Markdown report (:mod:`export.report`)."""
