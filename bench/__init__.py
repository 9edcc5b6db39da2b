"""Benchmarks: measured, never asserted. Each module runs with ``python -m bench.<name>``."""
