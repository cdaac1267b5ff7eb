"""The executor port's tests share the session's one local Ray with the node's tests."""

from __future__ import annotations

from tests.node.conftest import ray_cluster

__all__ = ["ray_cluster"]
