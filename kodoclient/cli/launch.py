"""`koco launch FLOW`: start an execution and print its id, without following it."""

from __future__ import annotations

import click

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.file_transfer import files_option, parse_file_refs, upload_inputs
from kodoclient.cli.flowref import looks_like_entrypoint, match_flow
from kodoclient.cli.options import inputs_from, inputs_options, json_option
from kodoclient.cli.render import record


@click.command("launch")
@click.argument("flow")
@inputs_options
@files_option
@json_option
@click.pass_context
def launch(
    ctx: click.Context,
    flow: str,
    assignments: tuple[str, ...],
    inputs_json: str | None,
    file_refs: tuple[str, ...],
) -> None:
    """Launch FLOW (a catalog name, or the entrypoint of a catalog entry) and print its id.

    Follow it later with `koco watch ID`.
    """
    state = state_of(ctx)
    inputs = inputs_from(assignments, inputs_json)
    refs = parse_file_refs(file_refs)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            name = flow
            if looks_like_entrypoint(flow):
                entry = match_flow(await client.list_flows(), flow)
                name = entry.name if entry is not None else flow
            files = await upload_inputs(state, client, refs)
            execution = await client.launch(name, inputs, files=files)
        if state.settings.json:
            state.emit(record(execution))
        else:
            click.echo(execution.execution_id)
        return exit_codes.OK

    execute(ctx, body)
