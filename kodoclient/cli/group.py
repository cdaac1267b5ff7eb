"""`koco group ...`: admins manage user groups (flow allow-lists name them)."""

from __future__ import annotations

import click
from rich.table import Table

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, registry_option
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodosumi.v1 import auth_pb2 as pb


@click.group("group")
def group() -> None:
    """Manage user groups (admins only). `koco user add/set --group` also creates them."""


@group.command("add")
@click.argument("name")
@click.option("--description", default="", help="What the group is for.")
@registry_option
@click.pass_context
def add(ctx: click.Context, name: str, description: str, registry: str | None) -> None:
    """Create group NAME (or change its description)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.CreateGroupRequest(name=name, description=description)
        async with auth_client(state, registry) as client:
            await client.call("CreateGroup", request)
        state.note(f"group {name} created")
        return exit_codes.OK

    execute(ctx, body)


@group.command("remove")
@click.argument("name")
@registry_option
@click.pass_context
def remove(ctx: click.Context, name: str, registry: str | None) -> None:
    """Delete group NAME and every membership in it."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            await client.call("DeleteGroup", pb.DeleteGroupRequest(name=name))
        state.note(f"group {name} removed")
        return exit_codes.OK

    execute(ctx, body)


@group.command("list")
@registry_option
@json_option
@click.pass_context
def list_(ctx: click.Context, registry: str | None) -> None:
    """List groups and their members."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            response = await client.call("ListGroups", pb.ListGroupsRequest())
        if state.settings.json:
            for g in response.groups:
                state.emit(record(g))
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("GROUP", "MEMBERS", "DESCRIPTION"):
            table.add_column(column)
        for g in response.groups:
            table.add_row(g.name, ", ".join(g.members), g.description)
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)
