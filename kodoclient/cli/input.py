"""`koco input ID VALUE`: answer an execution's open input request."""

from __future__ import annotations

import click
import grpc

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.cli.values import parse_answer, schema_errors
from kodoclient.errors import KodoclientError
from kodosumi.jsonvalue import struct_to_dict
from kodosumi.v1 import event_pb2


def pick_request(
    pending: list[event_pb2.InputRequested], request_id: str | None
) -> event_pb2.InputRequested | None:
    """The request to answer: the one named, else the only open one.

    None when a named request is not among the open ones (the node has the last word).
    """
    if request_id:
        return next((r for r in pending if r.request_id == request_id), None)
    if len(pending) > 1:
        ids = ", ".join(r.request_id for r in pending)
        raise click.UsageError(f"several requests are open ({ids}); pick one with --request-id")
    return pending[0]


@click.command("input")
@click.argument("given", metavar="ID")
@click.argument("value", metavar="VALUE")
@click.option("--request-id", help="The request to answer; default: the one open request.")
@json_option
@click.pass_context
def input_(ctx: click.Context, given: str, value: str, request_id: str | None) -> None:
    """Answer the open input request of execution ID with VALUE.

    VALUE is JSON (a form's object, a number, ...) or else a plain string; approvals take
    yes/no. Without --request-id the open request is found by replaying the events.
    """
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            pending = await client.pending_inputs(execution_id)
            if not pending and not request_id:
                raise KodoclientError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"execution {execution_id} awaits no input",
                    reason="NO_INPUT_AWAITED",
                )
            request = pick_request(pending, request_id)
            kind = request.kind if request is not None else event_pb2.INPUT_KIND_UNSPECIFIED
            try:
                answer = parse_answer(value, kind)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="VALUE") from None
            if request is not None:
                problems = schema_errors(answer, struct_to_dict(request.schema))
                if problems:
                    raise click.BadParameter("; ".join(problems), param_hint="VALUE")
            target = request.request_id if request is not None else str(request_id)
            await client.provide_input(execution_id, target, answer)
        if state.settings.json:
            state.emit({"execution_id": execution_id, "request_id": target, "value": answer})
        else:
            state.note(f"answered {target} of {execution_id}")
        return exit_codes.OK

    execute(ctx, body)
