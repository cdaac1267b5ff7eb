"""Readable views of flows, executions and the node for the listing commands."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from google.protobuf import timestamp_pb2
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from kodoclient.cli.render import status_text
from kodosumi.jsonvalue import struct_to_dict
from kodosumi.v1 import flow_pb2, node_pb2


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
    for column in ("NAME", "ENTRYPOINT", "TAGS", "DESCRIPTION"):
        table.add_column(column, overflow="fold")
    for flow in flows:
        table.add_row(
            Text(flow.name, "bold"), flow.entrypoint, ", ".join(flow.tags), flow.description
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
    ):
        if value:
            grid.add_row(label, value)
    return grid
