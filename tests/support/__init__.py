"""Helpers shared by tests and benchmarks (never test modules imported as libraries)."""
