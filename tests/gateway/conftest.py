"""Gateway tests: the real stack (tests/gateway/stack.py) once per module."""

from tests.node.conftest import ray_cluster

__all__ = ["ray_cluster"]
