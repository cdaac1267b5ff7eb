"""Benchmarks of the node, each beside a baseline measured in the same run.

`make bench` (or `.venv/bin/python -m bench`) runs them all and prints one table per
benchmark and a summary; `--only NAME` picks one, `--quick` uses smaller counts. Not run by
the tests. The figures and how they are measured are written down in `docs/performance.md`.

Importing this package has no side effects: executor actors import `bench.flows` from it.
"""
