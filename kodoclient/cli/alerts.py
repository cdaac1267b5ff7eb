"""`koco alerts`: the node's operator stream — alerts its rules raised (failed or timed-out
executions, long input waits, peers offline, heartbeat lag, error rate), and `--follow` for
new ones as they fire. Operators and admins only.
"""

from __future__ import annotations

import datetime as dt

import click
from rich.text import Text

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.reconnect import ReconnectNotice
from kodoclient.cli.render import record
from kodosumi.v1 import event_pb2

SEVERITY_STYLES = {
    event_pb2.ALERT_SEVERITY_INFO: ("INFO", "cyan"),
    event_pb2.ALERT_SEVERITY_WARNING: ("WARN", "yellow"),
    event_pb2.ALERT_SEVERITY_CRITICAL: ("CRIT", "bold red"),
}


def alert_line(event: event_pb2.Event, tz: dt.tzinfo | None = None) -> Text:
    """One alert as a line: time, severity, rule, state, where, message."""
    alert = event.alert
    when = dt.datetime.fromtimestamp(event.time_unix_nano / 1e9, tz or dt.UTC)
    if tz is None:
        when = when.astimezone()
    label, style = SEVERITY_STYLES.get(alert.severity, ("ALERT", "yellow"))
    if alert.resolved:
        label, style = "OK", "green"
    where = alert.subject_node_id or alert.node_id
    if event.execution_id:
        where = f"{event.execution_id} ({alert.flow})" if alert.flow else event.execution_id
    line = Text.assemble(
        (f"#{event.seq:<5}", "dim"),
        (when.strftime("%Y-%m-%d %H:%M:%S "), "dim"),
        (f"{label:<4} ", style),
        (alert.rule, f"bold {style}"),
        ("  ", ""),
        (where, ""),
        ("  ", ""),
        (alert.message, style if not alert.resolved else ""),
    )
    if event.trace_id:
        line.append(f"  trace {event.trace_id}", "dim")
    return line


def show(state: CliState, event: event_pb2.Event) -> None:
    if state.settings.json:
        state.emit(record(event))
    else:
        state.out.print(alert_line(event), highlight=False, soft_wrap=True)


@click.command("alerts")
@click.option("-f", "--follow", is_flag=True, help="Keep following: show new alerts as they fire.")
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only alerts after this sequence number (resume where you left off).",
)
@json_option
@click.pass_context
def alerts(ctx: click.Context, follow: bool, after_seq: int) -> None:
    """Show the node's alerts (operators and admins only); with --follow, keep showing new
    ones until interrupted."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        seen, last = 0, after_seq
        async with AsyncClient(state.settings.connect_config()) as client:
            notice = ReconnectNotice(state.note, client.config.target, lambda: f"alert {last}")
            stream = client.alerts(
                after_seq,
                follow=follow,
                on_reconnect=notice.reconnecting,
                on_resumed=notice.resumed,
            )
            async for event in stream:
                seen, last = seen + 1, event.seq
                show(state, event)
        if not seen and not follow:
            state.note("no alerts")
        return exit_codes.OK

    execute(ctx, body)
