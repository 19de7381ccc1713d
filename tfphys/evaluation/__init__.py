"""Evaluation: anomaly scores, metrics, and reports (tables and plots)."""
