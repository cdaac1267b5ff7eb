"""`koco rerun ID`: launch the flow of execution ID again with the same inputs (`-i` and
`--inputs-json` change some), then follow it as `run` does."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.follow import follow
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import inputs_from, inputs_options, json_option
from kodoclient.cli.render import record
from kodosumi.jsonvalue import struct_to_dict


@click.command("rerun")
@click.argument("given", metavar="ID")
@inputs_options
@click.option(
    "--detach", is_flag=True, help="Print the new execution's id and return (as `launch`)."
)
@json_option
@click.pass_context
def rerun(
    ctx: click.Context,
    given: str,
    assignments: tuple[str, ...],
    inputs_json: str | None,
    detach: bool,
) -> None:
    """Launch the flow of execution ID again with its inputs (-i KEY=VALUE changes one),
    follow it live and exit with its outcome."""
    state = state_of(ctx)
    changes = inputs_from(assignments, inputs_json)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            before = await client.get_execution(execution_id)
            inputs = struct_to_dict(before.inputs) | changes
            execution = await client.launch(before.flow, inputs)
            if detach:
                if state.settings.json:
                    state.emit(record(execution))
                else:
                    click.echo(execution.execution_id)
                return exit_codes.OK
            state.note(
                f"relaunched {before.flow} ({execution_id}) as {execution.execution_id} "
                f"on {client.config.target}"
            )
            view = await follow(
                state, client, execution.execution_id, flow=before.flow, answer_inputs=True
            )
        return exit_codes.for_execution_status(view.status)

    execute(ctx, body)
