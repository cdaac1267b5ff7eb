"""`koco ls`: executions, newest first, filtered by status and flow."""

from __future__ import annotations

from contextlib import aclosing

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import executions_table
from kodoclient.events import Status, parse_status, status_names
from kodosumi.v1 import flow_pb2


def _statuses(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> list[Status]:
    parsed = []
    for value in values:
        # `--status running,failed` as well as `--status running --status failed`.
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                parsed.append(parse_status(part))
            except ValueError as e:
                raise click.BadParameter(str(e)) from None
    return parsed


@click.command("ls")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=_statuses,
    metavar="STATUS",
    help=f"Only executions in this status ({', '.join(status_names()).lower()}). Repeatable.",
)
@click.option("--flow", default="", help="Only executions of this flow.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="At most this many rows; 0 for all.",
)
@json_option
@click.pass_context
def ls(ctx: click.Context, statuses: list[Status], flow: str, limit: int) -> None:
    """List executions, newest first."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        rows: list[flow_pb2.Execution] = []
        async with AsyncClient(state.settings.connect_config()) as client:
            listing = client.list_executions(statuses=statuses, flow=flow, limit=limit or None)
            async with aclosing(listing) as executions:
                async for execution in executions:
                    if state.settings.json:
                        state.emit(record(execution))  # stream rows as pages arrive
                    else:
                        rows.append(execution)
        if not state.settings.json:
            if rows:
                state.show_table(executions_table(rows))
            else:
                state.note("no executions")
        return exit_codes.OK

    execute(ctx, body)
