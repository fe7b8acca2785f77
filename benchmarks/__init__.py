"""Benchmarks: our joint models and decoders beside peer methods, decoder throughput, loss kernels.

Run everything with ``make bench``; see ``benchmarks/README.md``.
"""
