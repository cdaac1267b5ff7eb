"""`koco flows`: the catalog of the node, or with `--all` every flow of every node the
registry knows (one row per node and flow)."""

from __future__ import annotations

import json

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.flow_view import flow_view
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import flow_offers_table, flows_table
from kodoclient.registry import RegistryClient
from kodosumi.jsonvalue import struct_to_dict


@click.command("flows")
@click.argument("name", required=False, default="")
@click.option("--tag", default="", help="Only flows carrying this tag.")
@click.option(
    "--schema",
    is_flag=True,
    help="With NAME: print the flow's input JSON Schema itself (what launches are checked "
    "against).",
)
@click.option(
    "--all",
    "everywhere",
    is_flag=True,
    help="Every flow of every node the registry knows, one row per node and flow.",
)
@registry_option
@json_option
@click.pass_context
def flows(
    ctx: click.Context,
    name: str,
    tag: str,
    schema: bool,
    everywhere: bool,
    registry: str | None,
) -> None:
    """List the flows the node can run (with --all: the flows of the whole network).

    With NAME: that flow, its inputs as a table (name, type, required, default,
    description) and, for a broken flow, why it is unavailable."""
    state = state_of(ctx)
    if registry and not everywhere:
        raise click.UsageError("--registry goes with --all")
    if schema and not name:
        raise click.UsageError("--schema goes with a flow NAME")
    if name and (everywhere or tag):
        raise click.UsageError("NAME shows one flow: no --all or --tag with it")

    async def body() -> ExitCode:
        if everywhere:
            return await _offers(state, tag, registry)
        if name:
            return await _one(state, name, schema)
        async with AsyncClient(state.settings.connect_config()) as client:
            catalog = await client.list_flows(tag)
        if state.settings.json:
            for flow in catalog:
                state.emit(record(flow))
        elif catalog:
            state.show_table(flows_table(catalog))
        else:
            state.note("no flows" + (f" tagged {tag!r}" if tag else ""))
        return exit_codes.OK

    execute(ctx, body)


async def _one(state: CliState, name: str, schema: bool) -> ExitCode:
    async with AsyncClient(state.settings.connect_config()) as client:
        flow = await client.get_flow(name)
    if schema:
        state.out.print_json(json.dumps(struct_to_dict(flow.input_schema)))
    elif state.settings.json:
        state.emit(record(flow))
    else:
        state.out.print(flow_view(flow))
    return exit_codes.OK


async def _offers(state: CliState, tag: str, registry: str | None) -> ExitCode:
    async with RegistryClient(registry_target(state, registry)) as client:
        offers = await client.list_flow_offers(tag=tag)
    if state.settings.json:
        for offer in offers:
            state.emit(record(offer))
    elif offers:
        state.show_table(flow_offers_table(offers))
    else:
        state.note(
            f"no flows in the registry at {client.address}" + (f" tagged {tag!r}" if tag else "")
        )
    return exit_codes.OK
