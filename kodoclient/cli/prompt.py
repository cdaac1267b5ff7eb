"""Answering a flow's input request at the terminal while `koco run` follows it.

Approvals take yes/no, text requests take a line, forms are asked field by field when the
schema is a flat object (else as one JSON document) and are checked against the schema
before anything is sent; the node checks again and its field violations re-open the prompt.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from kodoclient._async import AsyncClient
from kodoclient.cli.context import CliState
from kodoclient.cli.render import input_kind_name
from kodoclient.cli.values import parse_answer, parse_approval, schema_errors
from kodoclient.errors import KodoclientError
from kodosumi.jsonvalue import struct_to_dict, value_to_python
from kodosumi.v1 import event_pb2

_SIMPLE_TYPES = frozenset({"string", "integer", "number", "boolean"})
_MAX_ROUNDS = 5


class NoAnswer(Exception):
    """The user gave no answer (end of input); the request stays open."""


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Let Ctrl-C interrupt a blocking read at once.

    asyncio.run's own SIGINT handler only schedules a cancellation, which a thread
    blocked in input() would not see until the user presses Enter.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _read(console: Console, label: str) -> str:
    try:
        with _interruptible():
            return console.input(Text(label))  # Text: brackets in defaults are not markup
    except EOFError:
        raise NoAnswer from None


def flat_form_fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The properties of a flat object schema (only scalar fields) in asking order, else None.

    A schema travels as a protobuf Struct, a map that keeps no key order, so the order is
    made here: required fields as `required` lists them, then the others by name.
    """
    props = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(props, dict) or not props:
        return None
    if not all(isinstance(p, dict) and p.get("type") in _SIMPLE_TYPES for p in props.values()):
        return None
    required = [str(r) for r in schema.get("required", []) if r in props]
    order = required + sorted(k for k in props if k not in required)
    return {name: props[name] for name in order}


def coerce(text: str, json_type: str) -> Any:
    if json_type == "integer":
        return int(text)
    if json_type == "number":
        return float(text)
    if json_type == "boolean":
        return parse_approval(text)
    return text


def _ask_form_fields(
    console: Console,
    fields: dict[str, dict[str, Any]],
    required: set[str],
    defaults: dict[str, Any],
) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for name, prop in fields.items():
        default = defaults.get(name, prop.get("default"))
        label = Text.assemble(
            "  ",
            (str(prop.get("title") or name), "bold"),
            ("*" if name in required else "", "red"),
            (f" ({prop['description']})" if prop.get("description") else "", "dim"),
            (f" [{json.dumps(default)}]" if default is not None else "", "dim"),
            ": ",
        )
        console.print(label, end="")
        text = _read(console, "")
        if not text:
            if default is not None:
                value[name] = default
            continue
        value[name] = coerce(text, str(prop["type"]))
    return value


def ask(console: Console, request: event_pb2.InputRequested) -> Any:
    """Block until the user gives an answer that fits the request; raises NoAnswer on EOF."""
    schema = struct_to_dict(request.schema)
    default = value_to_python(request.default_value) if request.has_default else None
    kind = request.kind
    head = Text.assemble(
        (f"{input_kind_name(kind)} requested", "bold yellow"),
        (f" [{request.request_id}]", "dim"),
        "\n",
        request.prompt or "(no prompt)",
    )
    if request.timeout_seconds:
        head.append(f"\nanswer within {request.timeout_seconds:g} s", style="dim")
    console.print(Panel(head, border_style="yellow", expand=False))
    fields = flat_form_fields(schema) if kind == event_pb2.INPUT_KIND_FORM else None
    for _ in range(_MAX_ROUNDS):
        try:
            if fields is not None:
                required = {str(r) for r in schema.get("required", [])}
                defaults = default if isinstance(default, dict) else {}
                value = _ask_form_fields(console, fields, required, defaults)
            else:
                hint = {
                    event_pb2.INPUT_KIND_APPROVAL: "yes/no",
                    event_pb2.INPUT_KIND_TEXT: "text",
                }.get(kind, "JSON")
                shown = f" [{json.dumps(default)}]" if request.has_default else ""
                text = _read(console, f"{hint}{shown}> ")
                if not text and request.has_default:
                    return default
                value = parse_answer(text, kind)
        except ValueError as e:
            console.print(f"  {e}", style="red", markup=False)
            continue
        problems = schema_errors(value, schema)
        if not problems:
            return value
        for problem in problems:
            console.print(f"  {problem}", style="red", markup=False)
    raise NoAnswer


async def answer_request(
    state: CliState,
    client: AsyncClient,
    execution_id: str,
    request: event_pb2.InputRequested,
) -> bool:
    """Prompt for `request` and send the answer; False when it stays unanswered."""
    for _ in range(_MAX_ROUNDS):
        try:
            # Deliberately blocking in the loop's thread: the flow waits for us anyway, and
            # a worker thread stuck in input() would hold up the exit after Ctrl-C.
            value = ask(state.out, request)
        except NoAnswer:
            state.note(
                f"no answer; answer later with: koco input {execution_id} "
                f"--request-id {request.request_id} VALUE"
            )
            return False
        try:
            await client.provide_input(execution_id, request.request_id, value)
            return True
        except KodoclientError as e:
            if e.code == grpc.StatusCode.INVALID_ARGUMENT:
                state.err.print(f"rejected: {e}", style="red", markup=False)
                continue
            if e.code == grpc.StatusCode.FAILED_PRECONDITION:
                # Answered elsewhere, timed out, or the execution ended meanwhile.
                state.note(f"the request is no longer open: {e.message}")
                return False
            raise
    return False
