"""`koco files ID` lists an execution's files; `koco download ID NAME|FILE_ID` saves one."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.file_transfer import DIRECTIONS, download_one, human, pick
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.cli.tables import timestamp


@click.command("files")
@click.argument("given", metavar="ID")
@json_option
@click.pass_context
def files(ctx: click.Context, given: str) -> None:
    """List the input and output files of execution ID (an id prefix is enough)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            listed = await client.files().list(execution_id)
        if state.settings.json:
            for f in listed:
                state.emit(
                    {
                        "execution_id": execution_id,
                        "direction": DIRECTIONS.get(f.direction, ""),
                        "name": f.name,
                        "file_id": f.file_id,
                        "size": f.size,
                        "sha256": f.sha256,
                        "media_type": f.media_type,
                        "node_id": f.node_id,
                    }
                )
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("", "NAME", "SIZE", "TYPE", "FILE ID", "CREATED"):
            table.add_column(column)
        for f in listed:
            table.add_row(
                DIRECTIONS.get(f.direction, ""),
                f.name,
                human(f.size),
                f.media_type,
                f.file_id,
                timestamp(f.create_time),
            )
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@click.command("download")
@click.argument("given", metavar="ID")
@click.argument("wanted", metavar="NAME|FILE_ID")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Where to save it (a folder keeps the file's name). Default: NAME here.",
)
@click.option(
    "--restart", is_flag=True, help="Start over instead of resuming an interrupted download."
)
@json_option
@click.pass_context
def download(
    ctx: click.Context, given: str, wanted: str, output: Path | None, restart: bool
) -> None:
    """Save a file of execution ID: an output (or input) by name, or by file id.

    Shows progress; an interrupted download (NAME.part) resumes where it stopped.
    """
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            info = pick(await client.files().list(execution_id), wanted)
            dest = output if output is not None else Path(info.name)
            if dest.is_dir():
                dest = dest / info.name
            await download_one(state, client, info, dest, resume=not restart)
        if state.settings.json:
            state.emit({"file_id": info.file_id, "path": str(dest), "size": info.size})
        else:
            click.echo(str(dest))
        return exit_codes.OK

    execute(ctx, body)
