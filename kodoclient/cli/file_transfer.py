"""Files on the command line: `-f NAME=@PATH` uploads, progress bars, where outputs are.

Shared by `koco run`/`koco launch` (input files), `koco files` and `koco download`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import grpc
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TransferSpeedColumn,
)

from kodoclient._async import AsyncClient
from kodoclient.cli.context import CliState
from kodoclient.errors import KodoclientError
from kodoclient.files import Progress as ProgressCallback
from kodosumi.v1 import file_pb2

_FILE_ID = re.compile(r"^[0-9a-f]{32}$")
DIRECTIONS = {
    file_pb2.FILE_DIRECTION_INPUT: "in",
    file_pb2.FILE_DIRECTION_OUTPUT: "out",
}


def files_option(command: Any) -> Any:
    return click.option(
        "-f",
        "--file",
        "file_refs",
        metavar="NAME=@PATH",
        multiple=True,
        help="An input file the flow reads as ctx.files[NAME]: @PATH uploads PATH first; "
        "a file id names one uploaded before. Repeatable.",
    )(command)


def parse_file_refs(refs: tuple[str, ...]) -> dict[str, str | Path]:
    """NAME=@PATH -> a path to upload; NAME=FILE_ID -> that file."""
    parsed: dict[str, str | Path] = {}
    for ref in refs:
        name, sep, value = ref.partition("=")
        if not sep or not name or not value:
            raise click.BadParameter(f"{ref!r}: NAME=@PATH or NAME=FILE_ID", param_hint="'-f'")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            if not path.is_file():
                raise click.BadParameter(f"{ref!r}: no file {path}", param_hint="'-f'")
            parsed[name] = path
        elif _FILE_ID.match(value):
            parsed[name] = value
        else:
            raise click.BadParameter(
                f"{ref!r}: @PATH (a file to upload) or a 32-digit file id", param_hint="'-f'"
            )
    return parsed


@contextmanager
def progress_bar(state: CliState, label: str, total: int) -> Iterator[ProgressCallback]:
    """A transfer's progress on stderr (nothing with --json)."""
    if state.settings.json:
        yield lambda done, size: None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=state.err, transient=True) as bar:
        task = bar.add_task(label, total=max(total, 1))
        yield lambda done, size: bar.update(task, completed=done, total=max(size, 1))


async def upload_inputs(
    state: CliState, client: AsyncClient, refs: dict[str, str | Path]
) -> dict[str, str]:
    """Upload the paths among `refs`; name -> file id for a launch."""
    files: dict[str, str] = {}
    for name, ref in refs.items():
        if isinstance(ref, str):
            files[name] = ref
            continue
        size = ref.stat().st_size
        with progress_bar(state, f"uploading {ref.name}", size) as progress:
            info = await client.files().upload(ref, progress=progress)
        state.note(f"uploaded {ref} as {name} ({human(info.size)}, file {info.file_id})")
        files[name] = info.file_id
    return files


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def pick(files: list[file_pb2.FileInfo], wanted: str) -> file_pb2.FileInfo:
    """The file named `wanted` (outputs before inputs) or with that id."""
    by_id = [f for f in files if f.file_id == wanted]
    named = sorted(
        (f for f in files if f.name == wanted),
        key=lambda f: f.direction != file_pb2.FILE_DIRECTION_OUTPUT,
    )
    found = by_id or named
    if not found:
        known = ", ".join(f.name for f in files) or "none"
        raise KodoclientError(
            grpc.StatusCode.NOT_FOUND,
            f"no file {wanted!r} in this execution (files: {known})",
            reason="FILE_NOT_FOUND",
        )
    return found[0]


async def download_one(
    state: CliState, client: AsyncClient, info: file_pb2.FileInfo, dest: Path, resume: bool
) -> Path:
    with progress_bar(state, f"downloading {info.name}", info.size) as progress:
        await client.files().download(info.file_id, dest, resume=resume, progress=progress)
    return dest


async def outputs_of(client: AsyncClient, execution_id: str) -> list[file_pb2.FileInfo]:
    return await client.files().list(execution_id, file_pb2.FILE_DIRECTION_OUTPUT)


async def say_outputs(
    state: CliState, client: AsyncClient, execution_id: str, download_dir: Path | None
) -> None:
    """After a run: where its output files are, or (with --download DIR) save them there."""
    outputs = await outputs_of(client, execution_id)
    if not outputs:
        return
    if download_dir is None:
        for f in outputs:
            state.note(f"output {f.name} ({human(f.size)}): koco download {execution_id} {f.name}")
        return
    for f in outputs:
        dest = await download_one(state, client, f, download_dir / f.name, resume=True)
        state.note(f"saved {f.name} ({human(f.size)}) to {dest}")
