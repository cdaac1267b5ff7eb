"""The registry's rows in SQLite: nodes and changes as the tuples `sqlite_store` writes and
reads (lists as JSON, states and kinds by value, a change's node snapshot without flows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from registryd.model import Change, ChangeKind, FlowEntry, NodeLoad, NodeRecord, NodeState

NODE_COLUMNS = (
    "node_id, identity, endpoints, version, capabilities, state, state_reason, load, "
    "first_registered_at, state_changed_at, last_heartbeat_at, lease_expires_at, "
    "heartbeat_interval, revision"
)


def node_to_row(node: NodeRecord) -> tuple[Any, ...]:
    return (
        node.node_id,
        node.identity,
        json.dumps(list(node.endpoints)),
        node.version,
        json.dumps(list(node.capabilities)),
        node.state.value,
        node.state_reason,
        json.dumps(asdict(node.load)),
        node.first_registered_at,
        node.state_changed_at,
        node.last_heartbeat_at,
        node.lease_expires_at,
        node.heartbeat_interval,
        node.revision,
    )


def node_from_row(row: Iterable[Any], flows: tuple[FlowEntry, ...]) -> NodeRecord:
    (
        node_id,
        identity,
        endpoints,
        version,
        capabilities,
        state,
        state_reason,
        load,
        first_registered_at,
        state_changed_at,
        last_heartbeat_at,
        lease_expires_at,
        heartbeat_interval,
        revision,
    ) = row
    return NodeRecord(
        node_id=node_id,
        identity=identity,
        endpoints=tuple(json.loads(endpoints)),
        flows=flows,
        version=version,
        capabilities=tuple(json.loads(capabilities)),
        state=NodeState(state),
        state_reason=state_reason,
        load=NodeLoad(**json.loads(load)),
        first_registered_at=first_registered_at,
        state_changed_at=state_changed_at,
        last_heartbeat_at=last_heartbeat_at,
        lease_expires_at=lease_expires_at,
        heartbeat_interval=heartbeat_interval,
        revision=revision,
    )


def change_to_row(change: Change) -> tuple[Any, ...]:
    node = _snapshot_to_json(change.node) if change.node is not None else None
    flow = change.flow
    return (
        change.revision,
        change.kind.value,
        change.node_id,
        change.at,
        node,
        flow.name if flow else None,
        json.dumps(list(flow.tags)) if flow else None,
        flow.spec if flow else None,
    )


def change_from_row(row: Iterable[Any]) -> Change:
    revision, kind, node_id, at, node, flow_name, flow_tags, flow_spec = row
    snapshot = _snapshot_from_json(node) if node is not None else None
    flow = None
    if flow_name is not None:
        flow = FlowEntry(flow_name, tuple(json.loads(flow_tags)), flow_spec)
    return Change(
        revision=revision, kind=ChangeKind(kind), node_id=node_id, at=at, node=snapshot, flow=flow
    )


def _snapshot_to_json(node: NodeRecord) -> str:
    """A node snapshot of the change log, without flows (they travel in FLOW_* changes)."""
    data = asdict(node)
    del data["flows"]
    return json.dumps(data)


def _snapshot_from_json(text: str) -> NodeRecord:
    data = json.loads(text)
    return NodeRecord(
        **{
            **data,
            "endpoints": tuple(data["endpoints"]),
            "capabilities": tuple(data["capabilities"]),
            "state": NodeState(data["state"]),
            "load": NodeLoad(**data["load"]),
            "flows": (),
        }
    )
