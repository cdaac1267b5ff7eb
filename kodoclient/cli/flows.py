"""`koco flows`: the catalog of the node."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import flows_table


@click.command("flows")
@click.option("--tag", default="", help="Only flows carrying this tag.")
@json_option
@click.pass_context
def flows(ctx: click.Context, tag: str) -> None:
    """List the flows the node can run."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            catalog = await client.list_flows(tag)
        if state.settings.json:
            for flow in catalog:
                state.emit(record(flow))
        elif catalog:
            state.out.print(flows_table(catalog))
        else:
            state.note("no flows" + (f" tagged {tag!r}" if tag else ""))
        return exit_codes.OK

    execute(ctx, body)
