"""`koco user ...`: admins manage people (the auth provider beside the registry)."""

from __future__ import annotations

import click
from rich.table import Table

from kodoclient.auth import ROLE_NAMES, duration
from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, issue_token, registry_option
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodosumi.v1 import auth_pb2 as pb

_ROLE = click.Choice(sorted(ROLE_NAMES))


def _roles(names: tuple[str, ...]) -> list[pb.Role.ValueType]:
    return [ROLE_NAMES[n] for n in names]


def _role_names(user: pb.User) -> str:
    names = {v: k for k, v in ROLE_NAMES.items()}
    return ", ".join(names[r] for r in user.roles if r in names)


@click.group("user")
def user() -> None:
    """Manage users: who they are, their roles and groups (admins only)."""


@user.command("add")
@click.argument("name")
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="Repeatable.")
@click.option("--role", "roles", multiple=True, type=_ROLE, help="Besides `user`; repeatable.")
@click.option("--token-ttl", type=float, metavar="SECONDS", help="Token lifetime (1 day).")
@registry_option
@json_option
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    groups: tuple[str, ...],
    roles: tuple[str, ...],
    token_ttl: float | None,
    registry: str | None,
) -> None:
    """Create user NAME and print its one-time enrollment token (for `koco login`)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.CreateUserRequest(name=name, roles=_roles(roles), groups=list(groups))
        ttl = duration(token_ttl)
        if ttl is not None:
            request.token_ttl.CopyFrom(ttl)
        async with auth_client(state, registry) as client:
            response = await client.call("CreateUser", request)
        if state.settings.json:
            state.emit(record(response))
        else:
            state.note(f"user {response.user.identity} ({_role_names(response.user)})")
            state.note("hand this one-time token to the user: koco login TOKEN")
            click.echo(response.enrollment_token)
        return exit_codes.OK

    execute(ctx, body)


@user.command("token")
@click.argument("name")
@click.option("--ttl", type=float, metavar="SECONDS", help="Token lifetime (1 day).")
@registry_option
@json_option
@click.pass_context
def token(ctx: click.Context, name: str, ttl: float | None, registry: str | None) -> None:
    """A new one-time enrollment token for an existing user (a new device, a lost key)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        return await issue_token(state, registry, pb.IDENTITY_KIND_USER, name, ttl)

    execute(ctx, body)


@user.command("set")
@click.argument("name")
@click.option(
    "--group", "groups", multiple=True, metavar="GROUP", help="Replaces the groups; repeatable."
)
@click.option("--role", "roles", multiple=True, type=_ROLE, help="Replaces the roles; repeatable.")
@click.option("--no-groups", is_flag=True, help="Take the user out of every group.")
@registry_option
@json_option
@click.pass_context
def set_(
    ctx: click.Context,
    name: str,
    groups: tuple[str, ...],
    roles: tuple[str, ...],
    no_groups: bool,
    registry: str | None,
) -> None:
    """Change the roles or groups of user NAME; what is not given stays. Takes effect on every
    node within seconds."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            listed = await client.call("ListUsers", pb.ListUsersRequest())
            current = next((u for u in listed.users if u.name == name), None)
            request = pb.UpdateUserRequest(
                name=name,
                roles=_roles(roles) if roles else list(current.roles if current else ()),
                groups=[]
                if no_groups
                else list(groups)
                if groups
                else list(current.groups if current else ()),
            )
            response = await client.call("UpdateUser", request)
        if state.settings.json:
            state.emit(record(response.user))
        else:
            state.out.print(
                f"{response.user.identity}: roles {_role_names(response.user)}; "
                f"groups {', '.join(response.user.groups) or '-'}",
                highlight=False,
            )
        return exit_codes.OK

    execute(ctx, body)


@user.command("remove")
@click.argument("name")
@registry_option
@click.pass_context
def remove(ctx: click.Context, name: str, registry: str | None) -> None:
    """Delete user NAME and revoke every certificate it holds."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            await client.call("DeleteUser", pb.DeleteUserRequest(name=name))
        state.note(f"user {name} removed; its certificates are revoked")
        return exit_codes.OK

    execute(ctx, body)


@user.command("list")
@registry_option
@json_option
@click.pass_context
def list_(ctx: click.Context, registry: str | None) -> None:
    """List users with their roles and groups."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            response = await client.call("ListUsers", pb.ListUsersRequest())
        if state.settings.json:
            for u in response.users:
                state.emit(record(u))
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("NAME", "ROLES", "GROUPS", "IDENTITY"):
            table.add_column(column)
        for u in response.users:
            table.add_row(u.name, _role_names(u), ", ".join(u.groups), u.identity)
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)
