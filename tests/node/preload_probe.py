"""A flow module that must never be imported by the node (tests/node/test_preload.py reads it)."""

raise RuntimeError("the node imported a flow module to inspect it")


def f() -> None: ...
