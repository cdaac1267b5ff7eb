"""Readable views of flows, executions, the node and the network for the listing commands."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from google.protobuf import timestamp_pb2
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kodoclient.cli.render import status_text
from kodoclient.registry import state_name
from kodosumi.jsonvalue import struct_to_dict
from kodosumi.pricing import price_text
from kodosumi.v1 import flow_pb2, node_pb2, registry_pb2


def timestamp(ts: timestamp_pb2.Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime(dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def took(execution: flow_pb2.Execution) -> str:
    """Run time: start to end, or start to now-unknown (blank) while it runs."""
    start = execution.start_time if execution.HasField("start_time") else execution.create_time
    if not execution.HasField("end_time") or not (start.seconds or start.nanos):
        return ""
    seconds = (execution.end_time.ToNanoseconds() - start.ToNanoseconds()) / 1e9
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def flows_table(flows: Iterable[flow_pb2.Flow]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "ENTRYPOINT", "TAGS", "PRICE", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    for flow in flows:
        # A broken flow (found when the node checked its catalog) says so where it is listed.
        about = (
            Text(f"UNAVAILABLE: {flow.unavailable_reason}", "red")
            if flow.unavailable_reason
            else Text(flow.description)
        )
        table.add_row(
            Text(flow.name, "bold"),
            flow.entrypoint,
            ", ".join(flow.tags),
            price_text(flow.price),
            about,
        )
    return table


def executions_table(executions: Iterable[flow_pb2.Execution]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "FLOW", "STATUS", "CREATED", "TOOK", "OWNER"):
        table.add_column(column, no_wrap=column in ("ID", "STATUS"))
    for execution in executions:
        table.add_row(
            execution.execution_id,
            execution.flow,
            status_text(execution.status),
            timestamp(execution.create_time),
            took(execution),
            execution.owner.rsplit("/", 1)[-1],
        )
    return table


def execution_view(execution: flow_pb2.Execution) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("id", execution.execution_id),
        ("flow", execution.flow),
        ("status", status_text(execution.status)),
        ("reason", execution.status_reason),
        ("owner", execution.owner),
        ("node", execution.node_id),
        ("created", timestamp(execution.create_time)),
        ("started", timestamp(execution.start_time)),
        ("ended", timestamp(execution.end_time)),
        ("took", took(execution)),
        ("events", str(execution.last_seq)),
        ("attempt", str(execution.attempt) if execution.attempt > 1 else ""),
        ("parent", execution.parent_execution_id),
        ("trace", execution.trace_id),
    ]
    inputs = struct_to_dict(execution.inputs)
    if inputs:
        rows.append(("inputs", json.dumps(inputs, ensure_ascii=False)))
    for label, value in rows:
        if value:
            grid.add_row(label, value)
    return grid


def placement_text(executor: node_pb2.ExecutorInfo) -> str:
    """`GPU=1 gpu=a100 @10.0.0.7`; `anywhere` for none."""
    parts = [f"{k}={v:g}" for k, v in sorted(executor.resources.items())]
    parts += [f"{k}={v}" for k, v in sorted(executor.labels.items())]
    if executor.placement_node:
        parts.append(f"@{executor.placement_node}")
    return " ".join(parts) or "anywhere"


def executors_table(node: node_pb2.NodeInfo) -> Table:
    """The node's executors and the Ray node that hosts each."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("EXECUTOR", "KIND", "RUNS", "RAY NODE", "PLACEMENT"):
        table.add_column(column, no_wrap=True)
    for e in node.executors:
        kind = e.isolation + (" (warm)" if e.warm else "") + (" (retiring)" if e.retiring else "")
        host = e.ray_node_address or "?"
        if e.ray_node_id:
            host += f" {e.ray_node_id[:8]}"
        table.add_row(e.name, kind, str(e.executions), host, placement_text(e))
    return table


def node_view(node: node_pb2.NodeInfo) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    load = node.load
    for label, value in (
        ("node", node.node_id),
        ("version", node.version),
        ("identity", node.identity or "(plaintext)"),
        ("endpoints", ", ".join(node.endpoints)),
        ("ray", node.ray_address),
        ("flows", str(len(node.flows))),
        (
            "running",
            f"{load.running_executions} running, {load.pending_executions} pending, "
            f"{load.awaiting_input_executions} awaiting input",
        ),
        ("degraded", node.degraded_reason),
    ):
        if value:
            grid.add_row(label, value)
    if not node.executors:
        return grid
    return Group(grid, Text(""), executors_table(node))


# -- the network: registry nodes, flow offers, a node's peers ---------------------------------

_REGISTRY_STATE_STYLE = {"ONLINE": "green", "OFFLINE": "red", "LEFT": "dim"}
_LIVENESS_STYLE = {"ALIVE": "green", "DEAD": "red", "UNKNOWN": "yellow"}


def ago(ts: timestamp_pb2.Timestamp, now: dt.datetime | None = None) -> str:
    """`4s ago`, `3m ago`, `2h ago`, `5d ago`; blank for an unset time."""
    if not ts.seconds and not ts.nanos:
        return ""
    seconds = ((now or dt.datetime.now(dt.UTC)) - ts.ToDatetime(dt.UTC)).total_seconds()
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def load_text(load: node_pb2.NodeLoad) -> str:
    """`2 running, 1 pending, 1 awaiting input`, or `idle`."""
    parts = [
        f"{count} {label}"
        for count, label in (
            (load.running_executions, "running"),
            (load.pending_executions, "pending"),
            (load.awaiting_input_executions, "awaiting input"),
        )
        if count
    ]
    return ", ".join(parts) or "idle"


def registry_state_text(state: int) -> Text:
    name = state_name(state)
    return Text(name, _REGISTRY_STATE_STYLE.get(name, ""))


def nodes_table(nodes: Iterable[registry_pb2.RegisteredNode]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NODE", "STATE", "ENDPOINTS", "FLOWS", "LOAD", "HEARTBEAT", "VERSION"):
        table.add_column(column, overflow="fold", no_wrap=column not in ("FLOWS", "LOAD"))
    for node in nodes:
        table.add_row(
            Text(node.node_id, "bold"),
            registry_state_text(node.state),
            ", ".join(node.endpoints),
            ", ".join(sorted(f.name for f in node.flows)),
            load_text(node.load),
            ago(node.last_heartbeat_time),
            node.version,
        )
    return table


def registered_node_view(node: registry_pb2.RegisteredNode) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    state = registry_state_text(node.state)
    if node.state_reason:
        state.append(f" ({node.state_reason})", style="dim")
    interval = node.heartbeat_interval.ToTimedelta().total_seconds()
    rows: list[tuple[str, str | Text]] = [
        ("node", node.node_id),
        ("state", state),
        ("identity", node.identity),
        ("endpoints", ", ".join(node.endpoints)),
        ("version", node.version),
        ("capabilities", ", ".join(node.capabilities)),
        ("flows", ", ".join(sorted(f.name for f in node.flows))),
        ("load", load_text(node.load)),
        ("registered", timestamp(node.first_register_time)),
        ("state since", timestamp(node.state_change_time)),
        ("heartbeat", f"{ago(node.last_heartbeat_time)}, every {interval:g} s"),
        ("lease until", timestamp(node.lease_expire_time)),
        ("revision", str(node.revision)),
    ]
    for label, value in rows:
        if value:
            grid.add_row(label, value)
    return grid


def flow_offers_table(offers: Iterable[registry_pb2.FlowOffer]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("FLOW", "NODE", "STATE", "ENDPOINTS", "LOAD", "TAGS", "PRICE"):
        table.add_column(
            column, overflow="fold", no_wrap=column in ("FLOW", "NODE", "STATE", "ENDPOINTS")
        )
    # One line per offer: the description gives way first on a narrow terminal.
    table.add_column("DESCRIPTION", overflow="ellipsis", no_wrap=True)
    for offer in offers:
        table.add_row(
            Text(offer.flow.name, "bold"),
            offer.flow.node_id,
            registry_state_text(offer.node_state),
            ", ".join(offer.endpoints),
            load_text(offer.node_load),
            ", ".join(offer.flow.tags),
            price_text(offer.flow.price),
            Text(f"UNAVAILABLE: {offer.flow.unavailable_reason}", "red")
            if offer.flow.unavailable_reason
            else Text(offer.flow.description),
        )
    return table


def _enum_suffix(name: str, prefix: str) -> str:
    return name.removeprefix(prefix) if name != f"{prefix}UNSPECIFIED" else ""


def peers_table(peers: Iterable[node_pb2.Peer]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in (
        "NODE",
        "SOURCE",
        "REGISTRY",
        "LIVENESS",
        "ENDPOINTS",
        "FLOWS",
        "LOAD",
        "CHECKED",
    ):
        table.add_column(column, overflow="fold", no_wrap=column not in ("LIVENESS", "FLOWS"))
    for peer in peers:
        source = _enum_suffix(node_pb2.PeerSource.Name(peer.source), "PEER_SOURCE_")
        registry = _enum_suffix(
            node_pb2.PeerRegistryState.Name(peer.registry_state), "PEER_REGISTRY_STATE_"
        )
        alive = _enum_suffix(node_pb2.PeerLiveness.Name(peer.liveness), "PEER_LIVENESS_")
        liveness = Text(alive.lower(), _LIVENESS_STYLE.get(alive, ""))
        if peer.liveness_reason and peer.liveness != node_pb2.PEER_LIVENESS_ALIVE:
            liveness.append(f" ({peer.liveness_reason})", style="dim")
        table.add_row(
            Text(peer.node_id, "bold"),
            source.lower(),
            Text(registry or "-", _REGISTRY_STATE_STYLE.get(registry, "dim")),
            liveness,
            ", ".join(peer.endpoints),
            ", ".join(peer.flow_names),
            load_text(peer.load),
            ago(peer.last_check_time),
        )
    return table
