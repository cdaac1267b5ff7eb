"""The node a logged-in person's commands go to when none is named: chosen at `koco login`
(`--node`, else the first online node in the registry's list) and switched with
`koco nodes use NODE`; kept in the login profile (`kodoclient.identity`).
"""

from __future__ import annotations

import grpc

from kodoclient.cli.context import CliState
from kodoclient.errors import KodoclientError
from kodoclient.identity import set_default_node
from kodoclient.registry import RegistryClient
from kodosumi.v1 import registry_pb2 as rpb


def is_address(node: str) -> bool:
    """HOST:PORT rather than a node id (ids carry no colon)."""
    return ":" in node


async def pick_node(registry: RegistryClient, wanted: str | None) -> tuple[str, str] | None:
    """(node id, address) of `wanted` — a node id the registry knows, or HOST:PORT — or,
    when nothing is named, of the first online node by id; None when none is online."""
    if wanted and is_address(wanted):
        return "", wanted
    if wanted:
        node = await registry.get_node(wanted)  # NOT_FOUND when the registry never knew it
        if not node.endpoints:
            raise KodoclientError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"node {wanted} has no endpoints in the registry (state "
                f"{rpb.RegisteredNodeState.Name(node.state)})",
                reason="NODE_WITHOUT_ENDPOINTS",
            )
        return node.node_id, node.endpoints[0]
    listing = await registry.list_nodes(states=[rpb.REGISTERED_NODE_STATE_ONLINE])
    for node in listing.nodes:
        if node.endpoints:
            return node.node_id, node.endpoints[0]
    return None


def remember(state: CliState, node_id: str, address: str) -> None:
    """Store the choice in the login profile and say so."""
    if set_default_node(state.settings.state, node_id, address) is None:
        raise KodoclientError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "nobody is logged in from this state directory: `koco login TOKEN` first "
            "(or name a node with --node / $KODOSUMI_NODE)",
            reason="NOT_LOGGED_IN",
        )
    named = f"{node_id} ({address})" if node_id else address
    state.note(f"default node: {named}")
