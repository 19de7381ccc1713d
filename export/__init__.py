"""Deployment toolchain behind ``tfphys-export``: builtin-ops TFLite conversion at float32, float16 or int8
(:mod:`export.convert`), float32 ONNX with a dynamic batch validated with ONNX Runtime as CMSSW runs it,
plus a Triton model directory and a CMSSW producer sketch (:mod:`export.to_onnx`), validation against the
Keras model and batch-1 timings (:mod:`export.exporter`, :mod:`export.latency`), and the JSON/Markdown
report (:mod:`export.report`). It imports the tfphys core and registry only, never a paper's package."""
