"""`koco validate FILE|ENTRYPOINT`: check a flow before any node runs it, every error at once.

A YAML crew spec gets every mistake with its file, line and column; an entrypoint
(`package.module:attr`, a dotted path, or `path/to/file.py:attr`) is imported as an
executor would (in a process of its own: `kodosumi.flow_check`), and its inputs, as the
node will publish them, are shown. Nothing is launched; no node is needed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from kodoclient.cli import exit_codes
from kodoclient.cli.context import state_of
from kodoclient.cli.flow_view import accepts_more, inputs_rows, inputs_table
from kodoclient.cli.options import json_option
from kodosumi.crew_spec_meta import SpecMetadataError, catalog_entry
from kodosumi.flow_check import CheckFailed, FlowCheck, run_check

YAML_SUFFIXES = (".yaml", ".yml")


def resolve(target: str) -> tuple[str, tuple[str, ...]]:
    """The entrypoint to check and the folders to import it from: `dir/flows.py:greet`
    becomes `flows:greet` imported from `dir`; other entrypoints import from the working
    directory (as a node started there would)."""
    cwd = os.getcwd()
    if target.endswith(YAML_SUFFIXES):
        return str(Path(target).expanduser().resolve()), (cwd,)
    module, sep, attr = target.partition(":")
    if module.endswith(".py"):
        path = Path(module).expanduser().resolve()
        return f"{path.stem}{sep}{attr}", (str(path.parent), cwd)
    return target, (cwd,)


@click.command("validate")
@click.argument("target", metavar="FILE|ENTRYPOINT")
@json_option
@click.pass_context
def validate(ctx: click.Context, target: str) -> None:
    """Check a YAML crew spec or a flow entrypoint: every error at once, or its inputs.

    Exit 0 when it can run, 2 when it cannot (each error is printed)."""
    state = state_of(ctx)
    entrypoint, python_path = resolve(target)
    try:
        verdict = asyncio.run(run_check([(target, entrypoint)], python_path))[target]
    except CheckFailed as e:
        # Importing it ended the checking process (os._exit, a crash): the flow's fault.
        verdict = FlowCheck(errors=(f"{entrypoint}: checking it failed: {e}",))
    schema = verdict.input_schema
    if schema is None and entrypoint.endswith(YAML_SUFFIXES) and not verdict.errors:
        try:
            schema = catalog_entry(entrypoint)["input_schema"]
        except SpecMetadataError as e:
            verdict = FlowCheck(errors=(str(e),))
    if state.settings.json:
        state.emit(
            {
                "target": target,
                "ok": not verdict.errors,
                "errors": list(verdict.errors),
                "input_schema": schema,
                "description": verdict.description,
            }
        )
    elif verdict.errors:
        count = len(verdict.errors)
        click.echo(f"{target}: {count} error{'s' if count != 1 else ''}")
        for error in verdict.errors:
            click.echo(f"  {error}")
    else:
        click.echo(f"{target}: ok")
        if verdict.description:
            click.echo(f"  {verdict.description}")
        _print_inputs(state.out, schema)
    code = exit_codes.USAGE if verdict.errors else exit_codes.OK
    raise SystemExit(code.code)


def _print_inputs(out: Console, schema: dict[str, Any] | None) -> None:
    if schema is None:
        click.echo("  inputs: any (the flow takes the whole input mapping)")
        return
    rows = inputs_rows(schema)
    if rows:
        out.print(inputs_table(rows))
    else:
        click.echo("  inputs: none")
    if rows and accepts_more(schema):
        click.echo("  other inputs are accepted too (**kwargs)")
