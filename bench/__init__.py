"""Benchmark harness of the key service: `make bench` (see bench/RESULTS.md)."""
