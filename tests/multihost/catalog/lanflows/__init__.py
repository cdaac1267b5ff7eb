"""Flows of the multi-host Ray test's catalog directory. The test copies this package to
the head host's catalog folder, so `lanflows` is importable only there (never from the
checkout, never on a Ray worker's path): executors on other hosts get it by runtime env."""
