"""Following one execution live: the loop `run` and `watch` share.

With `--json` every event is one JSON line on stdout. Otherwise events scroll by as lines
above a live block (status, progress bar, steps in flight), and the result, the failure
and a summary are printed once the terminal event arrives.
"""

from __future__ import annotations

import json
from contextlib import aclosing

import click
from rich.live import Live
from rich.panel import Panel

from kodoclient._async import AsyncClient
from kodoclient.cli.context import CliState
from kodoclient.cli.prompt import answer_request
from kodoclient.cli.reconnect import ReconnectNotice
from kodoclient.cli.render import (
    error_view,
    event_line,
    record,
    result_view,
    status_view,
    summary_line,
)
from kodoclient.follow_state import FollowState, apply
from kodosumi.v1 import event_pb2


async def follow(
    state: CliState,
    client: AsyncClient,
    execution_id: str,
    *,
    after_seq: int = 0,
    flow: str = "",
    answer_inputs: bool = False,
) -> FollowState:
    """Show the execution's events until its terminal event; the state they fold into."""
    view = FollowState(execution_id=execution_id, flow=flow)
    if state.settings.json:
        async with aclosing(client.watch(execution_id, after_seq)) as events:
            async for event in events:
                apply(view, event)
                state.emit(record(event))
                if event.WhichOneof("kind") == "input_requested":
                    # Nobody is asked in --json mode: say on stderr how to answer.
                    _json_input_hint(state, execution_id, event.input_requested.request_id)
        return view

    console = state.out
    interactive = console.is_terminal
    verbose = state.settings.verbose
    live = Live(
        get_renderable=lambda: status_view(view),
        console=console,
        transient=True,
        auto_refresh=interactive,
        refresh_per_second=8,
        redirect_stdout=False,
        redirect_stderr=False,
    )

    def say(line: str) -> None:
        live.console.print(line, style="yellow", highlight=False, markup=False, soft_wrap=True)

    notice = ReconnectNotice(say, client.config.target, lambda: f"seq {view.last_seq}")

    with live:
        watch = client.watch(
            execution_id,
            after_seq,
            on_reconnect=notice.reconnecting,
            on_resumed=notice.resumed,
        )
        async with aclosing(watch) as events:
            async for event in events:
                apply(view, event)
                kind = event.WhichOneof("kind")
                # On a terminal the progress bar shows progress; elsewhere it gets lines.
                if not (interactive and kind == "progress"):
                    line = event_line(event, verbose=verbose)
                    if line is not None:
                        live.console.print(line)
                if kind == "status_changed":
                    live.refresh()  # rare and worth showing at once, unlike most events
                if kind != "input_requested":
                    continue
                if answer_inputs and state.can_prompt:
                    if await _still_open(client, execution_id, event):
                        live.stop()
                        try:
                            await answer_request(state, client, execution_id, event.input_requested)
                        finally:
                            live.start()
                else:
                    request_id = event.input_requested.request_id
                    live.console.print(
                        f"  answer with: {answer_command(execution_id, request_id)}",
                        style="dim",
                        highlight=False,
                        markup=False,
                        soft_wrap=True,
                    )
    print_outcome(state, view)
    return view


def answer_command(execution_id: str, request_id: str) -> str:
    return f"koco input {execution_id} --request-id {request_id} VALUE"


def _json_input_hint(state: CliState, execution_id: str, request_id: str) -> None:
    hint = {
        "input_requested": {
            "execution_id": execution_id,
            "request_id": request_id,
            "answer_with": answer_command(execution_id, request_id),
        }
    }
    click.echo(json.dumps(hint, ensure_ascii=False), err=True)


async def _still_open(client: AsyncClient, execution_id: str, event: event_pb2.Event) -> bool:
    """Whether a replayed request still waits, so that nobody is asked twice."""
    execution = await client.get_execution(execution_id)
    if execution.status != event_pb2.EXECUTION_STATUS_AWAITING_INPUT:
        return False
    if execution.last_seq == event.seq:
        return True
    later = await client.history(execution_id, after_seq=event.seq)
    request_id = event.input_requested.request_id
    return not any(
        e.WhichOneof("kind") == "input_provided" and e.input_provided.request_id == request_id
        for e in later
    )


def print_outcome(state: CliState, view: FollowState) -> None:
    console = state.out
    if view.result is not None:
        body = result_view(view.result)
        if body is not None:
            if console.is_terminal:
                console.print(Panel(body, title="result", title_align="left", border_style="green"))
            else:
                console.print(body)
    if view.status == event_pb2.EXECUTION_STATUS_FAILED and view.errors:
        state.err.print(error_view(view.errors[-1], state.settings.verbose), soft_wrap=True)
    # One line off a terminal (a script greps it), however long the reason.
    console.print(summary_line(view), soft_wrap=True)
