"""What `koco top` draws: a `Snapshot` (one reading), the rates between two readings, the
dashboard's panels (node, network, peers, executions, alerts) and the `--json` record.

Pure functions of a snapshot (ages read the wall clock), no network, so every panel is
unit-testable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kodoclient.cli.alerts import alert_line
from kodoclient.cli.render import record, status_text
from kodoclient.cli.tables import executors_table
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb

ACTIVE = (
    event_pb2.EXECUTION_STATUS_PENDING,
    event_pb2.EXECUTION_STATUS_STARTING,
    event_pb2.EXECUTION_STATUS_RUNNING,
    event_pb2.EXECUTION_STATUS_AWAITING_INPUT,
    event_pb2.EXECUTION_STATUS_RETRYING,
    event_pb2.EXECUTION_STATUS_PEER_LOST,
)
ALERT_ROWS = 8
EXECUTION_ROWS = 15


@dataclass
class Snapshot:
    """One reading of what the dashboard shows."""

    at: float
    node: node_pb2.NodeInfo
    executions: list[flow_pb2.Execution]
    alerts: list[event_pb2.Event]
    # Why alerts are missing ("" when shown): the caller is no operator, ...
    alerts_note: str = ""
    network: list[rpb.RegisteredNode] | None = None
    peers: list[node_pb2.Peer] | None = None
    network_note: str = ""
    rates: dict[str, float] = field(default_factory=dict)


def rates(previous: Snapshot | None, current: Snapshot) -> dict[str, float]:
    """Per-second rates of the node's counters between two readings."""
    if previous is None or current.at <= previous.at:
        return {}
    seconds = current.at - previous.at
    before, after = previous.node.load, current.node.load
    return {
        "launched_per_min": 60 * (after.executions_started - before.executions_started) / seconds,
        "ended_per_min": 60 * (after.executions_finished - before.executions_finished) / seconds,
        "failed_per_min": 60 * (after.executions_failed - before.executions_failed) / seconds,
        "events_per_s": (after.events_stored - before.events_stored) / seconds,
    }


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _node_panel(snapshot: Snapshot) -> RenderableType:
    node, load = snapshot.node, snapshot.node.load
    grid = Table.grid(padding=(0, 3))
    for _ in range(4):
        grid.add_column()
    r = snapshot.rates

    def rate(key: str, unit: str) -> str:
        return f"{r[key]:.1f}{unit}" if key in r else "-"

    grid.add_row(
        Text.assemble(("node ", "dim"), (node.node_id, "bold")),
        Text.assemble(("version ", "dim"), node.version),
        Text.assemble(("up ", "dim"), _age(load.uptime_seconds)),
        Text.assemble(("load ", "dim"), f"{load.load_average:.2f}"),
    )
    grid.add_row(
        Text.assemble(("running ", "dim"), (str(load.running_executions), "bold green")),
        Text.assemble(("pending ", "dim"), str(load.pending_executions)),
        Text.assemble(("awaiting input ", "dim"), (str(load.awaiting_input_executions), "yellow")),
        Text.assemble(("watchers ", "dim"), str(load.watchers)),
    )
    failed_style = "red" if load.executions_failed else ""
    grid.add_row(
        Text.assemble(
            ("executors ", "dim"), f"{load.executor_actors} ({load.warm_executors} warm)"
        ),
        Text.assemble(
            ("launched ", "dim"), f"{load.executions_started}  ", rate("launched_per_min", "/min")
        ),
        Text.assemble(
            ("ended ", "dim"),
            f"{load.executions_finished}",
            ("  failed ", "dim"),
            (f"{load.executions_failed}", failed_style),
            f"  {rate('failed_per_min', '/min')}",
        ),
        Text.assemble(("events ", "dim"), f"{load.events_stored}  ", rate("events_per_s", "/s")),
    )
    title = f"kodosumi top — {', '.join(node.endpoints) or node.node_id}"
    return Panel(grid, title=title, title_align="left", border_style="blue")


def _network_panel(snapshot: Snapshot) -> RenderableType | None:
    if snapshot.network is None:
        if snapshot.network_note:
            return Panel(Text(snapshot.network_note, "dim"), title="network", title_align="left")
        return None
    table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
    for column in (
        "NODE",
        "STATE",
        "RUNNING",
        "PENDING",
        "AWAITING",
        "EXECUTORS",
        "HEARTBEAT",
        "VERSION",
    ):
        table.add_column(column, no_wrap=True)  # fmt: skip
    now = time.time()
    styles = {"ONLINE": "green", "OFFLINE": "red", "LEFT": "dim"}
    for node in snapshot.network:
        state = rpb.RegisteredNodeState.Name(node.state).removeprefix("REGISTERED_NODE_STATE_")
        beat = (
            node.last_heartbeat_time.ToNanoseconds() / 1e9
            if node.last_heartbeat_time.seconds
            else 0
        )
        table.add_row(
            Text(node.node_id, "bold" if node.node_id == snapshot.node.node_id else ""),
            Text(state, styles.get(state, "")),
            str(node.load.running_executions),
            str(node.load.pending_executions),
            str(node.load.awaiting_input_executions),
            str(node.load.executor_actors),
            f"{_age(max(0.0, now - beat))} ago" if beat else "",
            node.version,
        )
    online = sum(1 for n in snapshot.network if n.state == rpb.REGISTERED_NODE_STATE_ONLINE)
    title = f"network — {online} of {len(snapshot.network)} nodes online"
    return Panel(table, title=title, title_align="left", border_style="blue")


def _peers_panel(snapshot: Snapshot) -> RenderableType | None:
    if snapshot.peers is None:
        return None
    table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
    for column in ("NODE", "LIVENESS", "REGISTRY", "SOURCE", "RUNNING", "PENDING", "FLOWS"):
        table.add_column(column, no_wrap=column != "FLOWS")
    styles = {"ALIVE": "green", "DEAD": "red", "UNKNOWN": "yellow"}
    for peer in snapshot.peers:
        liveness = node_pb2.PeerLiveness.Name(peer.liveness).removeprefix("PEER_LIVENESS_")
        registry = node_pb2.PeerRegistryState.Name(peer.registry_state).removeprefix(
            "PEER_REGISTRY_STATE_"
        )
        source = node_pb2.PeerSource.Name(peer.source).removeprefix("PEER_SOURCE_").lower()
        table.add_row(
            Text(peer.node_id, "bold" if peer.routable else "dim"),
            Text(liveness, styles.get(liveness, "")),
            "" if registry == "UNSPECIFIED" else registry,
            source,
            str(peer.load.running_executions),
            str(peer.load.pending_executions),
            ", ".join(peer.flow_names),
        )
    if not snapshot.peers:
        table.add_row(Text("no peers", "dim"), "", "", "", "", "", "")
    alive = sum(1 for p in snapshot.peers if p.liveness == node_pb2.PEER_LIVENESS_ALIVE)
    title = f"peers of {snapshot.node.node_id} — {alive} of {len(snapshot.peers)} alive"
    return Panel(table, title=title, title_align="left", border_style="blue")


def _executions_panel(snapshot: Snapshot) -> RenderableType:
    table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
    for column in ("ID", "FLOW", "STATUS", "AGE", "EVENTS", "OWNER"):
        table.add_column(column, no_wrap=True)
    now = time.time_ns()
    for execution in snapshot.executions[:EXECUTION_ROWS]:
        table.add_row(
            execution.execution_id,
            execution.flow,
            status_text(execution.status),
            _age((now - execution.create_time.ToNanoseconds()) / 1e9),
            str(execution.last_seq),
            execution.owner.rsplit("/", 1)[-1],
        )
    if not snapshot.executions:
        table.add_row(Text("nothing running", "dim"), "", "", "", "", "")
    title = f"executions — {len(snapshot.executions)} not ended"
    return Panel(table, title=title, title_align="left", border_style="blue")


def _alerts_panel(snapshot: Snapshot) -> RenderableType:
    body: RenderableType
    if snapshot.alerts_note:
        body = Text(snapshot.alerts_note, "dim")
    elif not snapshot.alerts:
        body = Text("no alerts", "dim")
    else:
        body = Group(*(alert_line(a) for a in snapshot.alerts[-ALERT_ROWS:]))
    return Panel(body, title="alerts", title_align="left", border_style="blue")


def dashboard(snapshot: Snapshot) -> RenderableType:
    parts = [_node_panel(snapshot)]
    for panel in (_network_panel(snapshot), _peers_panel(snapshot)):
        if panel is not None:
            parts.append(panel)
    if snapshot.node.executors:
        parts.append(
            Panel(
                executors_table(snapshot.node),
                title=f"executors — {len(snapshot.node.executors)}",
                title_align="left",
                border_style="blue",
            )
        )
    parts += [_executions_panel(snapshot), _alerts_panel(snapshot)]
    return Group(*parts)


def snapshot_record(snapshot: Snapshot) -> dict[str, Any]:
    data: dict[str, Any] = {
        "node": record(snapshot.node),
        "executions": [record(e) for e in snapshot.executions],
        "alerts": [record(a) for a in snapshot.alerts],
        "rates": snapshot.rates,
    }
    if snapshot.network is not None:
        data["network"] = [record(n) for n in snapshot.network]
    if snapshot.peers is not None:
        data["peers"] = [record(p) for p in snapshot.peers]
    return data
