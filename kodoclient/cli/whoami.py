"""`koco whoami`: the identity, roles and groups the auth provider sees for you."""

from __future__ import annotations

import click

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, registry_option
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.render import record
from kodoclient.cli.tables import timestamp


@click.command("whoami")
@registry_option
@json_option
@click.pass_context
def whoami(ctx: click.Context, registry: str | None) -> None:
    """Show your identity, roles, groups and certificate expiry."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with auth_client(state, registry) as client:
            me = await client.whoami()
        if state.settings.json:
            state.emit(record(me))
        else:
            state.out.print(
                f"{me.identity}\nroles:   {', '.join(me.roles)}\ngroups:  "
                f"{', '.join(me.groups) or '-'}\nserial:  {me.serial}\nexpires: "
                f"{timestamp(me.expire_time)}",
                highlight=False,
            )
        return exit_codes.OK

    execute(ctx, body)
