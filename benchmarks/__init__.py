"""toyformer's benchmarks, run on demand from the repository root (``python -m benchmarks.<name>``).

Speed targets live here, never in timed unit tests.
"""
