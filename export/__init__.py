"""Deployment toolchain (float16 TFLite export, LiteRT latency reports) — filled by the export issue."""
