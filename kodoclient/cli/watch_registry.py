"""`koco watch-registry`: follow the registry's change log live, resuming after breaks."""

from __future__ import annotations

import datetime as dt
from contextlib import aclosing
from typing import Any

import click
from rich.text import Text

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.reconnect import ReconnectNotice
from kodoclient.cli.render import record
from kodoclient.cli.tables import nodes_table
from kodoclient.registry import RegistryClient, RegistrySnapshot, change_kind_name
from kodosumi.v1 import registry_pb2 as rpb

_KIND_STYLE = {
    "NODE_ONLINE": "green",
    "NODE_OFFLINE": "red",
    "NODE_LEFT": "yellow",
    "NODE_UPDATED": "cyan",
    "FLOW_ADDED": "green",
    "FLOW_REMOVED": "yellow",
    "FLOW_UPDATED": "cyan",
}


def change_line(change: rpb.RegistryChange) -> Text:
    """`r12  14:02:11  NODE_ONLINE   node-b  127.0.0.1:7471` — one line per change."""
    kind = change_kind_name(change.kind)
    when = ""
    if change.HasField("time"):
        when = change.time.ToDatetime(dt.UTC).astimezone().strftime("%H:%M:%S")
    line = Text(f"r{change.revision:<5} ", "dim")
    line.append(f"{when}  ", "dim")
    line.append(f"{kind:<13} ", _KIND_STYLE.get(kind, ""))
    line.append(change.node_id, "bold")
    if change.HasField("flow"):
        flow = change.flow
        line.append(f"  {flow.name}" + (f" v{flow.version}" if flow.version else ""))
    elif change.HasField("node"):
        node = change.node
        if node.endpoints:
            line.append(f"  {', '.join(node.endpoints)}")
        if node.state_reason:
            line.append(f"  ({node.state_reason})", "dim")
    return line


def snapshot_record(snapshot: RegistrySnapshot) -> dict[str, Any]:
    """A snapshot as one JSON object (the revision a string, as uint64s are in proto JSON)."""
    return {
        "snapshot": {
            "revision": str(snapshot.revision),
            "nodes": [record(n) for n in snapshot.nodes],
        }
    }


@click.command("watch-registry")
@click.option(
    "--after",
    "after_revision",
    type=click.IntRange(min=0),
    metavar="REV",
    help="Replay the changes after revision REV first (0: every change the registry keeps). "
    "Default: list the nodes, then follow the changes after that list.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep following live changes, or stop once caught up with the registry.",
)
@registry_option
@json_option
@click.pass_context
def watch_registry(
    ctx: click.Context, after_revision: int | None, follow: bool, registry: str | None
) -> None:
    """Follow the registry's changes: nodes coming, going, changing, and their flows."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        target = registry_target(state, registry)
        async with RegistryClient(target, reconnect=state.settings.reconnect_policy()) as client:
            last = [after_revision]
            notice = ReconnectNotice(
                state.note, f"the registry at {target.address}", lambda: f"revision {last[0]}"
            )
            feed = client.watch_registry(
                after_revision,
                follow=follow,
                on_reconnect=notice.reconnecting,
                on_resumed=notice.resumed,
            )
            # Without --after the first snapshot is asked for; any other one means the
            # registry no longer kept the revision to resume from.
            asked = after_revision is None
            async with aclosing(feed) as items:
                async for item in items:
                    _show(state, item, asked=asked)
                    last[0] = item.revision
                    asked = asked and not isinstance(item, RegistrySnapshot)
        return exit_codes.OK

    execute(ctx, body)


def _show(state: CliState, item: rpb.RegistryChange | RegistrySnapshot, *, asked: bool) -> None:
    if isinstance(item, rpb.RegistryChange):
        if state.settings.json:
            state.emit(record(item))
        else:
            state.out.print(change_line(item), highlight=False, soft_wrap=True)
        return
    if state.settings.json:
        state.emit(snapshot_record(item))
        return
    if item.nodes:
        state.show_table(nodes_table(item.nodes))
    why = "" if asked else "the registry no longer keeps the revision to resume from; "
    state.note(f"{why}{len(item.nodes)} nodes at revision {item.revision}; following changes")
