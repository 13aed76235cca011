"""Benchmarks: figures and ratios against a raw aio-pika baseline, not tests."""
