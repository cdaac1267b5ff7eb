"""Market tests run on the peers' cluster (a real registryd, real nodes, the session's Ray)."""

from tests.node.conftest import ray_cluster  # noqa: F401  (a fixture)
from tests.peers.conftest import cluster  # noqa: F401  (a fixture)
