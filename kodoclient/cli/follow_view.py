"""The live view of a followed execution: the status block, the result, the error, the
summary line, drawn from a `FollowState` (the SDK's `kodoclient.follow_state` folds events
into it). Pure functions to rich renderables, no clock, terminal or network.
"""

from __future__ import annotations

import json

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.markdown import Markdown
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from kodoclient.cli.event_lines import STATUS_STYLES, input_kind_name, status_text
from kodoclient.follow_state import FollowState
from kodosumi.jsonvalue import value_to_python
from kodosumi.v1 import event_pb2


def status_view(state: FollowState, *, max_steps: int = 6) -> RenderableType:
    """The block that stays at the bottom of the terminal while an execution is followed."""
    known = state.status != event_pb2.EXECUTION_STATUS_UNSPECIFIED
    header = Text.assemble(
        (state.flow + " " if state.flow else "", "bold"),
        (state.execution_id, "dim"),
        "  ",
        status_text(state.status) if known else Text("waiting for events…", "dim"),
        (f"  {state.elapsed_seconds:.1f} s" if state.last_ns else "", "dim"),
    )
    parts: list[RenderableType] = [header]
    if state.progress is not None or state.progress_message:
        grid = Table.grid(padding=(0, 1))
        fraction = state.progress
        bar = ProgressBar(total=1.0, completed=fraction or 0.0, width=30, pulse=fraction is None)
        grid.add_row(
            bar,
            Text(f"{fraction * 100:3.0f}%" if fraction is not None else "  …", "bold blue"),
            Text(state.progress_message, "dim"),
        )
        parts.append(grid)
    for label in list(state.active.values())[-max_steps:]:
        parts.append(Spinner("dots", text=Text(label, "cyan")))
    for request in state.open_inputs.values():
        parts.append(
            Text.assemble(
                ("? awaiting ", "bold yellow"),
                (input_kind_name(request.kind), "bold yellow"),
                f": {request.prompt}",
                (f"  [{request.request_id}]", "dim"),
            )
        )
    return Group(*parts)


def result_view(result: event_pb2.Result) -> RenderableType | None:
    """The result in its richest form: markdown, else JSON, else text, else task outputs."""
    if result.markdown:
        return Markdown(result.markdown)
    if result.has_json:
        return JSON(json.dumps(value_to_python(result.json), ensure_ascii=False))
    if result.text:
        return Text(result.text)
    if result.task_outputs:
        parts: list[RenderableType] = []
        for out in result.task_outputs:
            who = f" ({out.agent_role})" if out.agent_role else ""
            parts.append(Text(f"{out.task_name}{who}", "bold"))
            if out.raw:
                parts.append(Text(out.raw))
            elif out.HasField("json"):
                parts.append(JSON(json.dumps(value_to_python(out.json), ensure_ascii=False)))
        return Group(*parts)
    return None


def error_view(error: event_pb2.Error, verbose: bool = False) -> RenderableType:
    """The error that failed a run; its traceback only with -v (as documented)."""
    text = Text.assemble((f"{error.type or 'Error'}: ", "bold red"), (error.message, "red"))
    if verbose and error.traceback:
        text.append("\n" + error.traceback.rstrip(), style="dim")
    return text


def summary_line(state: FollowState) -> Text:
    """The last line of a follow: how it ended, how long it took, what it cost."""
    facts = []
    if state.last_ns:
        facts.append(f"{state.elapsed_seconds:.1f} s")
    if state.llm_calls:
        tokens = state.prompt_tokens + state.completion_tokens
        facts.append(f"{state.llm_calls} LLM call{'s' * (state.llm_calls != 1)}, {tokens} tokens")
    if state.tool_calls:
        facts.append(f"{state.tool_calls} tool call{'s' * (state.tool_calls != 1)}")
    mark = "✔" if state.status == event_pb2.EXECUTION_STATUS_SUCCEEDED else "✖"
    if not state.terminal:
        mark = "…"
    style = STATUS_STYLES.get(state.status, "")
    text = Text.assemble((f"{mark} ", style), status_text(state.status))
    if state.execution_id:
        text.append(f" {state.execution_id}", style="dim")
    if state.reason:
        text.append(f" — {state.reason}", style=style)
    if facts:
        text.append("  " + " · ".join(facts), style="dim")
    return text
