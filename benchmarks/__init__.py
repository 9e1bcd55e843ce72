"""Benchmarks: ``make bench`` (``python -m benchmarks [section ...]``) writes results.json."""
