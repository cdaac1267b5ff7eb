"""`koco result ID`: the result of a finished execution — and the artifacts it produced —
read from the end of its stored events, without replaying and redrawing the whole run."""

from __future__ import annotations

from typing import Any

import click
import grpc

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.cli.render import error_view, record, result_view, status_text
from kodoclient.errors import KodoclientError
from kodoclient.events import TERMINAL_STATUSES, status_name
from kodosumi.v1 import event_pb2, flow_pb2

# The result and the terminal status are the last events of a run: read this many from the
# end first, and everything only when the result lies further back.
TAIL = 64


async def _events(client: AsyncClient, execution: flow_pb2.Execution) -> list[event_pb2.Event]:
    start = max(0, execution.last_seq - TAIL)
    events = await client.history(execution.execution_id, after_seq=start)
    if start and not any(e.HasField("result") for e in events):
        events = await client.history(execution.execution_id)
    return events


def _artifacts(events: list[event_pb2.Event]) -> list[dict[str, Any]]:
    """One entry per artifact whose first chunk was read: name, type, size, where it starts."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        if not event.HasField("artifact"):
            continue
        art = event.artifact
        key = art.artifact_id or art.name
        entry = found.setdefault(
            key,
            {
                "name": art.name or art.artifact_id,
                "media_type": art.media_type or "application/octet-stream",
                "seq": event.seq,
                "size": 0,
            },
        )
        entry["size"] = art.total_size or entry["size"] + len(art.data)
    return list(found.values())


@click.command("result")
@click.argument("given", metavar="ID")
@json_option
@click.pass_context
def result(ctx: click.Context, given: str) -> None:
    """Print the result of execution ID and the artifacts it produced; exit with its outcome
    (6 while it is still running)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            execution = await client.get_execution(execution_id)
            if execution.status not in TERMINAL_STATUSES:
                raise KodoclientError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"execution {execution_id} has not ended yet "
                    f"({status_name(execution.status)}): follow it with `koco watch "
                    f"{execution_id}`",
                    reason="EXECUTION_NOT_FINISHED",
                )
            events = await _events(client, execution)
        _show(state, execution, events)
        return exit_codes.for_execution_status(execution.status)

    execute(ctx, body)


def _show(state: CliState, execution: flow_pb2.Execution, events: list[event_pb2.Event]) -> None:
    found = next((e.result for e in reversed(events) if e.HasField("result")), None)
    errors = [e.error for e in events if e.HasField("error")]
    artifacts = _artifacts(events)
    if state.settings.json:
        state.emit(
            {
                "execution_id": execution.execution_id,
                "flow": execution.flow,
                "status": status_name(execution.status),
                "status_reason": execution.status_reason,
                "result": record(found) if found is not None else None,
                "error": record(errors[-1]) if errors else None,
                "artifacts": artifacts,
            }
        )
        return
    body = result_view(found) if found is not None else None
    if body is not None:
        state.out.print(body)
    elif execution.status == event_pb2.EXECUTION_STATUS_SUCCEEDED:
        state.note("the execution returned no result")
    if execution.status == event_pb2.EXECUTION_STATUS_FAILED and errors:
        state.err.print(error_view(errors[-1], state.settings.verbose), soft_wrap=True)
    for art in artifacts:
        state.out.print(
            f"artifact {art['name']} ({art['media_type']}, {art['size']} bytes): "
            f"koco --json watch {execution.execution_id} --after-seq {art['seq'] - 1}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    line = status_text(execution.status)
    line.append(f" {execution.execution_id} {execution.flow}", style="dim")
    if execution.status_reason:
        line.append(f" — {execution.status_reason}")
    state.err.print(line, highlight=False, soft_wrap=True)
