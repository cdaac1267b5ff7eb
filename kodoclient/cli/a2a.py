"""`koco a2a`: A2A 1.0 from the command line, with the a2a-sdk over gRPC (docs/a2a.md).

`koco a2a card` prints a node's card (or a flow's, or one found by HTTP discovery) and
verifies its signature offline with the CA certificate; `koco a2a send` is a thin A2A
client: it sends one message (or answers a task's input request) and prints the updates.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import click
from a2a.types import a2a_pb2 as a2a
from google.protobuf.json_format import MessageToDict

from kodoclient.a2a import a2a_client, a2a_errors, discover_card, fetch_card
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import inputs_from, inputs_options, json_option
from kodoclient.cli.verify import ca_of
from kodoclient.config import ConnectConfig
from kodosumi.agent_card import CardSignatureError, verify_card
from kodosumi.jsonvalue import python_to_value, value_to_python

_STATE_EXIT = {
    a2a.TASK_STATE_COMPLETED: exit_codes.OK,
    a2a.TASK_STATE_FAILED: exit_codes.FAILED,
    a2a.TASK_STATE_CANCELED: exit_codes.CANCELLED,
    a2a.TASK_STATE_REJECTED: exit_codes.FAILED,
}


def _config(state: CliState, node: str | None) -> ConnectConfig:
    if node:
        state.settings = replace(state.settings, node=node)
    return state.settings.connect_config()


@click.group("a2a")
def a2a_group() -> None:
    """Talk A2A 1.0 (gRPC) to this node, or to any A2A agent."""


@a2a_group.command("card")
@click.option("--node", "node", metavar="HOST:PORT", help="The node (else the global --node).")
@click.option("--flow", default="", help="The card of this flow (its tenant) instead.")
@click.option("--url", default="", help="Read the card by HTTP discovery from this base URL.")
@click.option("--no-verify", is_flag=True, help="Print the card without checking its signature.")
@json_option
@click.pass_context
def card(ctx: click.Context, node: str | None, flow: str, url: str, no_verify: bool) -> None:
    """Print an agent card and verify its signature with the CA (exit 5 if it does not)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        if url:
            base = url.rstrip("/") + (f"/flows/{flow}" if flow else "")
            found = await discover_card(base)
        else:
            found = await fetch_card(_config(state, node), flow)
        signer, problem = "", ""
        if not no_verify:
            try:
                signer = str(verify_card(found, ca_of(state)))
            except CardSignatureError as e:
                problem = str(e)
        if state.settings.json:
            state.emit(
                {
                    "card": MessageToDict(found),
                    "signature": {"valid": bool(signer), "signer": signer, "error": problem},
                }
            )
        else:
            _print_card(state, found)
            if signer:
                state.out.print(f"signature: valid, signed by {signer}", highlight=False)
            elif problem:
                state.out.print(f"signature: INVALID: {problem}", style="red", highlight=False)
        return exit_codes.DENIED if problem else exit_codes.OK

    execute(ctx, body)


def _print_card(state: CliState, found: a2a.AgentCard) -> None:
    state.out.print(f"{found.name} (version {found.version})", highlight=False)
    state.out.print(found.description, highlight=False, markup=False)
    for interface in found.supported_interfaces:
        tenant = f" tenant={interface.tenant}" if interface.tenant else ""
        state.out.print(
            f"  {interface.protocol_binding} {interface.protocol_version} {interface.url}{tenant}",
            highlight=False,
        )
    caps = found.capabilities
    state.out.print(
        f"streaming={caps.streaming} push_notifications={caps.push_notifications} "
        f"extended_agent_card={caps.extended_agent_card}",
        highlight=False,
    )
    for skill in found.skills:
        state.out.print(f"  skill {skill.id}: {skill.description}", highlight=False, markup=False)


def _message(text: tuple[str, ...], inputs: dict[str, Any], task_id: str) -> a2a.Message:
    message = a2a.Message(message_id=uuid.uuid4().hex, role=a2a.ROLE_USER, task_id=task_id)
    if inputs or not text:
        part = message.parts.add()
        python_to_value(inputs, part.data)
    if text:
        message.parts.add().text = " ".join(text)
    return message


def _describe(update: a2a.StreamResponse) -> str:
    kind = update.WhichOneof("payload")
    if kind == "task":
        task = update.task
        lines = [f"task {task.id} {a2a.TaskState.Name(task.status.state)}"]
        for artifact in task.artifacts:  # a blocking send answers the whole task at once
            lines.append(f"artifact {artifact.name or artifact.artifact_id}: {_parts(artifact)}")
        return "\n".join(lines)
    if kind == "status_update":
        status = update.status_update.status
        words = [a2a.TaskState.Name(status.state)]
        for part in status.message.parts:
            if part.HasField("data"):
                words.append(json.dumps(value_to_python(part.data), sort_keys=True))
            elif part.text:
                words.append(part.text)
        return " ".join(words)
    if kind == "artifact_update":
        artifact = update.artifact_update.artifact
        more = "" if update.artifact_update.last_chunk else " …"
        return f"artifact {artifact.name or artifact.artifact_id}: {_parts(artifact)}{more}"
    return str(kind)


def _parts(artifact: a2a.Artifact) -> str:
    shown = []
    for part in artifact.parts:
        if part.HasField("data"):
            shown.append(json.dumps(value_to_python(part.data), sort_keys=True))
        elif part.text:
            shown.append(part.text)
        else:
            shown.append(f"<{len(part.raw)} bytes {part.media_type}>")
    return " ".join(shown)


@a2a_group.command("send")
@click.argument("text", nargs=-1)
@inputs_options
@click.option("--node", "node", metavar="HOST:PORT", help="The node (else the global --node).")
@click.option("--flow", default="", help="The flow (the request's tenant).")
@click.option("--url", default="", help="Another agent: its card by HTTP discovery from here.")
@click.option("--task", "task_id", default="", help="Answer this task's open input request.")
@click.option("--no-stream", is_flag=True, help="SendMessage (blocking) instead of a stream.")
@json_option
@click.pass_context
def send(
    ctx: click.Context,
    text: tuple[str, ...],
    assignments: tuple[str, ...],
    inputs_json: str | None,
    node: str | None,
    flow: str,
    url: str,
    task_id: str,
    no_stream: bool,
) -> None:
    """Send TEXT (and/or -i inputs as a data part) and print the task's updates.

    Exit codes as `koco run`: 0 completed, 10 failed, 11 cancelled, 13 waiting for input
    (answer with `--task ID`)."""
    state = state_of(ctx)
    inputs = inputs_from(assignments, inputs_json)

    async def body() -> ExitCode:
        config = _config(state, node)
        card_found = await discover_card(url) if url else None
        client = a2a_client(config, card=card_found, tenant=flow, streaming=not no_stream)
        request = a2a.SendMessageRequest(message=_message(text, inputs, task_id))
        if card_found is not None and flow:
            request.tenant = flow
        last_state = a2a.TASK_STATE_UNSPECIFIED
        try:
            async with a2a_errors("SendMessage"):
                async for update in client.send_message(request):
                    if update.HasField("task"):
                        last_state = update.task.status.state
                    elif update.HasField("status_update"):
                        last_state = update.status_update.status.state
                    if state.settings.json:
                        state.emit(MessageToDict(update))
                    else:
                        state.out.print(_describe(update), highlight=False, markup=False)
        finally:
            await client.close()
        return _STATE_EXIT.get(last_state, exit_codes.INCOMPLETE)

    execute(ctx, body)
