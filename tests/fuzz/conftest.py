"""The fuzz tests reuse the node and registry fixtures."""

from tests.node.conftest import ray_cluster, shared_node  # noqa: F401
from tests.registry.conftest import clock, pki, start_registry  # noqa: F401
