"""`koco nodes`: the nodes the registry knows, or one of them."""

from __future__ import annotations

import click

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.default_node import is_address, pick_node, remember
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import nodes_table, registered_node_view
from kodoclient.registry import RegistryClient
from kodosumi.v1 import registry_pb2 as rpb


@click.command("nodes")
@click.argument("words", nargs=-1, metavar="[NODE_ID | use NODE]")
@click.option("--flow", "flow_name", default="", help="Only nodes offering a flow of this name.")
@click.option("--tag", default="", help="Only nodes offering a flow with this tag.")
@click.option("--online", is_flag=True, help="Only nodes holding a live lease (ONLINE).")
@registry_option
@json_option
@click.pass_context
def nodes(
    ctx: click.Context,
    words: tuple[str, ...],
    flow_name: str,
    tag: str,
    online: bool,
    registry: str | None,
) -> None:
    """List the nodes the registry knows (state, endpoints, flows, load), or show NODE_ID.

    `nodes use NODE` makes NODE (a node id the registry knows, or HOST:PORT) the default
    node of your login: commands go there when no --node is given.
    """
    state = state_of(ctx)
    if words and words[0] == "use":
        if len(words) != 2:
            raise click.UsageError("usage: koco nodes use NODE (a node id or HOST:PORT)")
        if flow_name or tag or online:
            raise click.UsageError("`nodes use` takes no --flow/--tag/--online")
        execute(ctx, lambda: _use(state, words[1], registry))
    if len(words) > 1:
        raise click.UsageError(f"unexpected arguments: {' '.join(words[1:])}")
    node_id = words[0] if words else None
    if node_id and (flow_name or tag or online):
        raise click.UsageError("NODE_ID and --flow/--tag/--online exclude each other")

    async def body() -> ExitCode:
        async with RegistryClient(registry_target(state, registry)) as client:
            if node_id:
                node = await client.get_node(node_id)
                if state.settings.json:
                    state.emit(record(node))
                else:
                    state.out.print(registered_node_view(node))
                return exit_codes.OK
            listing = await client.list_nodes(
                states=[rpb.REGISTERED_NODE_STATE_ONLINE] if online else (),
                flow_name=flow_name,
                flow_tag=tag,
            )
        if state.settings.json:
            for node in listing.nodes:
                state.emit(record(node))
        elif listing.nodes:
            state.show_table(nodes_table(listing.nodes))
            state.note(f"registry {client.address}, revision {listing.revision}")
        else:
            state.note(f"no nodes (registry {client.address}, revision {listing.revision})")
        return exit_codes.OK

    execute(ctx, body)


async def _use(state: CliState, node: str, registry: str | None) -> ExitCode:
    if is_address(node):
        chosen: tuple[str, str] | None = ("", node)
    else:
        async with RegistryClient(registry_target(state, registry)) as client:
            chosen = await pick_node(client, node)
    assert chosen is not None  # a named node is found or NOT_FOUND
    remember(state, *chosen)
    if state.settings.json:
        state.emit({"node_id": chosen[0], "node_address": chosen[1]})
    return exit_codes.OK
