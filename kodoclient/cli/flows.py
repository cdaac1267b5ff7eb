"""`koco flows`: the catalog of the node, or with `--all` every flow of every node the
registry knows (one row per node and flow)."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import flow_offers_table, flows_table
from kodoclient.registry import RegistryClient


@click.command("flows")
@click.option("--tag", default="", help="Only flows carrying this tag.")
@click.option(
    "--all",
    "everywhere",
    is_flag=True,
    help="Every flow of every node the registry knows, one row per node and flow.",
)
@registry_option
@json_option
@click.pass_context
def flows(ctx: click.Context, tag: str, everywhere: bool, registry: str | None) -> None:
    """List the flows the node can run (with --all: the flows of the whole network)."""
    state = state_of(ctx)
    if registry and not everywhere:
        raise click.UsageError("--registry goes with --all")

    async def body() -> ExitCode:
        if everywhere:
            return await _offers(state, tag, registry)
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


async def _offers(state: CliState, tag: str, registry: str | None) -> ExitCode:
    async with RegistryClient(registry_target(state, registry)) as client:
        offers = await client.list_flow_offers(tag=tag)
    if state.settings.json:
        for offer in offers:
            state.emit(record(offer))
    elif offers:
        state.out.print(flow_offers_table(offers))
    else:
        state.note(
            f"no flows in the registry at {client.address}" + (f" tagged {tag!r}" if tag else "")
        )
    return exit_codes.OK
