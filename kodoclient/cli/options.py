"""Options more than one command takes: `--json` after the command, and launch inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from kodoclient.cli.context import state_of
from kodoclient.cli.values import parse_inputs

F = TypeVar("F", bound=Callable[..., Any])


def json_option(command: F) -> F:
    """`--json` after the command name too (`koco ls --json`), same as the global one."""

    def merge(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            state = state_of(ctx)
            state.settings = replace(state.settings, json=True)
        return value

    decorated: F = click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=merge,
        help="Machine output: one JSON object per line.",
    )(command)
    return decorated


def inputs_options(command: F) -> F:
    """`-i KEY=VALUE` (repeatable) and `--inputs-json`; read them with `inputs_from`."""
    command = click.option(
        "--inputs-json",
        metavar="JSON",
        help="All inputs as one JSON object, or @FILE to read it from a file.",
    )(command)
    decorated: F = click.option(
        "-i",
        "--input",
        "assignments",
        metavar="KEY=VALUE",
        multiple=True,
        help="One input; VALUE is parsed as JSON, else taken as a string. Repeatable.",
    )(command)
    return decorated


def inputs_from(assignments: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    try:
        return parse_inputs(assignments, inputs_json)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'-i' / '--inputs-json'") from None
