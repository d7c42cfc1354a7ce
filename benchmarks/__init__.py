"""Throughput and timing tools, run from the repository root as ``python -m benchmarks.NAME``."""
