"""The benchmark suite: ``python -m benchmarks`` (``make bench``) runs every benchmark and writes docs/benchmarks.md.

Everything runs against the project's emulator on 127.0.0.1, each emulator in its own process. This package
imports nothing heavy at import time: its modules are also started as worker processes (``python -m
benchmarks.<name> --worker ...``).
"""
