"""What every command shares: the global options, the consoles, and the one place where
errors become messages and exit codes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console, RenderableType

from kodoclient.cli import exit_codes
from kodoclient.cli.embedded import DEFAULT_COMMAND
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.tracing import command_trace
from kodoclient.config import DEFAULT_CALL_TIMEOUT, ConnectConfig, resolve_config
from kodoclient.errors import TLS_MISMATCH, KodoclientError
from kodoclient.identity import renew_if_due
from kodoclient.resume import ReconnectPolicy
from kodosumi.paths import default_state_dir

# Off a terminal a table is as wide as its content (rich needs some width to lay it out).
_UNBOUNDED = 100_000
_ENUM_PREFIXES = re.compile(r"\b(?:EXECUTION_STATUS_|REGISTERED_NODE_STATE_)(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Settings:
    """The global options, as given (None: not given, resolve as the SDK does)."""

    node: str | None = None
    state_dir: Path | None = None
    insecure: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    json: bool = False
    timeout: float = DEFAULT_CALL_TIMEOUT
    verbose: bool = False
    # Seconds a stream may spend reconnecting before the command gives up (None: never).
    give_up_after: float | None = None

    def reconnect_policy(self) -> ReconnectPolicy:
        return ReconnectPolicy(give_up_after=self.give_up_after)

    @property
    def state(self) -> Path:
        return self.state_dir if self.state_dir is not None else default_state_dir()

    def connect_config(self) -> ConnectConfig:
        if not self.insecure and self.cert is None:
            # A logged-in identity is renewed once two thirds of its lifetime have passed.
            renew_if_due(self.state)
        return resolve_config(
            target=self.node,
            state_dir=self.state,
            # The flag can only say "plaintext"; its absence leaves the choice to env/node.json.
            insecure=True if self.insecure else None,
            ca=self.ca,
            cert=self.cert,
            key=self.key,
            call_timeout=self.timeout,
            reconnect=self.reconnect_policy(),
        )


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


@dataclass
class CliState:
    """Lives in click's `ctx.obj`. Tests may pass one in (`CliRunner.invoke(obj=...)`)."""

    settings: Settings = field(default_factory=Settings)
    # Consoles look up sys.stdout/stderr when they write, so CliRunner captures them.
    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))
    # None: ask the terminal. Tests set True to drive the input prompts through stdin.
    interactive: bool | None = None
    # How `run` starts an embedded node; tests substitute a scripted daemon.
    node_command: tuple[str, ...] = DEFAULT_COMMAND
    # "node" or "registry": whom the command talks to, for the hint of an unreachable error.
    talks_to: str = "node"

    @property
    def can_prompt(self) -> bool:
        if self.settings.json:
            return False
        return self.interactive if self.interactive is not None else _stdin_is_tty()

    def show_table(self, table: RenderableType) -> None:
        """A table on stdout: fitted to a terminal; off a terminal (a pipe, a file) at its
        full width, so that no id, date or name is wrapped or cut for `grep` and `awk`."""
        if self.out.is_terminal:
            self.out.print(table)
            return
        wide = Console(width=_UNBOUNDED, color_system=None)
        with wide.capture() as captured:
            wide.print(table)
        # Without the padding rich puts after the last column.
        click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))

    def emit(self, data: dict[str, Any]) -> None:
        """One JSON object on one line of stdout (the --json output)."""
        click.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def note(self, message: str) -> None:
        """Progress chatter for humans: stderr, so stdout stays the command's result."""
        if not self.settings.json:
            # Not wrapped at 80 columns off a terminal: one note, one line for grep.
            self.err.print(message, style="dim", highlight=False, soft_wrap=True)

    def report(self, error: KodoclientError, code: ExitCode) -> None:
        if self.settings.json:
            payload: dict[str, Any] = {
                "code": error.code_name,
                "reason": error.reason,
                "message": error.message,
                "exit_code": code.code,
            }
            if error.violations:
                payload["violations"] = [
                    {"field": v.field, "description": v.description} for v in error.violations
                ]
            click.echo(json.dumps({"error": payload}, ensure_ascii=False), err=True)
            return
        # Status enums as words: a node's message may name EXECUTION_STATUS_SUCCEEDED.
        text = _ENUM_PREFIXES.sub("", str(error))
        self.err.print(f"error: {text}", style="red", highlight=False, markup=False, soft_wrap=True)
        hint = self._hint(error, code)
        if hint:
            self.err.print(hint, style="dim", highlight=False, markup=False, soft_wrap=True)

    def _hint(self, error: KodoclientError, code: ExitCode) -> str:
        if code is not exit_codes.UNREACHABLE or error.reason == TLS_MISMATCH:
            return ""  # a mismatch is said in the message itself
        if self.talks_to == "registry":
            return (
                "hint: start a registry with `registryd`, or point at one with --registry "
                "HOST:PORT or $KODOSUMI_REGISTRY (credentials: koco login, --ca/--cert/--key, "
                "or --insecure for a plaintext registry)"
            )
        return (
            "hint: start a node with `kodosumid`, or point at one with --node "
            "(and --ca/--cert/--key or --insecure)"
        )


def state_of(ctx: click.Context) -> CliState:
    state = ctx.find_object(CliState)
    if state is None:
        raise click.UsageError("internal: no CLI state")
    return state


def execute(ctx: click.Context, body: Callable[[], Coroutine[Any, Any, ExitCode]]) -> NoReturn:
    """Run an async command body and exit with its code, or with the code of its error."""
    state = state_of(ctx)
    # One trace per command when OTEL_* asks for it (kodoclient/cli/tracing.py).
    with command_trace(" ".join(ctx.command_path.split()[1:])) as span:
        try:
            code = asyncio.run(body())
        except KodoclientError as e:
            code = exit_codes.for_error(e)
            state.report(e, code)
        except KeyboardInterrupt:
            code = exit_codes.INTERRUPTED
            state.note("interrupted")
        if span is not None:
            span.set_attribute("process.exit.code", code.code)
    ctx.exit(code.code)
