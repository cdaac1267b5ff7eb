"""`koco timeline ID`: a run as a Gantt chart of its agents, tasks, LLM and tool calls.

Built from the execution's stored events (`kodoclient/timeline.py`); `--svg FILE` writes the
same chart as a picture, `--json` the bars as data.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import click
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.gantt_svg import render_svg, seconds_text
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.timeline import Bar, Timeline, build_timeline

STYLES = {
    "execution": "blue",
    "task": "cyan",
    "agent": "magenta",
    "llm": "yellow",
    "tool": "green",
    "input": "dark_orange",
}
LABEL_WIDTH = 34
MIN_LABEL_WIDTH = 12
MIN_BAR_WIDTH = 20
# Between the table's four columns: one space of padding on each side of each gap.
COLUMN_GAPS = 3 * 2


def _bar_text(bar: Bar, timeline: Timeline, width: int) -> Text:
    total = max(timeline.duration_ns, 1)
    end = bar.end_ns or timeline.end_ns or bar.start_ns
    first = min(width - 1, max(0, math.floor((bar.start_ns - timeline.start_ns) / total * width)))
    last = min(width, max(first + 1, math.ceil((end - timeline.start_ns) / total * width)))
    style = "red" if bar.state == "failed" else STYLES.get(bar.kind, "white")
    glyph = "░" if bar.state in ("unfinished", "running") else "█"
    return Text.assemble(
        (" " * first, ""), (glyph * (last - first), style), (" " * (width - last), "")
    )


def _label(bar: Bar, label_width: int = LABEL_WIDTH) -> Text:
    indent, name = _label_parts(bar)
    room = label_width - len(indent)
    if len(name) > room:
        name = name[: max(0, room - 1)] + "…"
    style = "bold" if bar.depth == 0 else ""
    return Text.assemble((indent, "dim"), (name, style))


def _label_parts(bar: Bar) -> tuple[str, str]:
    indent = "  " * max(0, bar.depth - 1) + ("└ " if bar.depth else "")
    return indent, f"{bar.kind} {bar.label}" if bar.kind != "execution" else bar.label


def _took(bar: Bar) -> str:
    took = seconds_text(bar.duration_ns) if bar.end_ns else "…"
    if bar.state in ("failed", "unfinished"):
        took += f" ({bar.state})"
    return took


def _tokens(bar: Bar) -> str:
    return f"{bar.prompt_tokens}+{bar.completion_tokens}" if bar.tokens else ""


def _axis(timeline: Timeline, width: int) -> Text:
    end = seconds_text(timeline.duration_ns)
    middle = seconds_text(timeline.duration_ns // 2)
    half = width // 2
    left = "0".ljust(half - len(middle) // 2)
    return Text(left + middle + end.rjust(width - len(left) - len(middle)), style="dim")


def layout(timeline: Timeline, columns: int, bar_width: int | None = None) -> tuple[int, int]:
    """(label width, bar width) so that the chart fits `columns`: TOOK and TOKENS are
    never cut; the bars get what is left (at least MIN_BAR_WIDTH), then labels shrink."""
    bars = timeline.bars
    took = max([len("TOOK"), *(len(_took(b)) for b in bars)])
    tokens = max([len("TOKENS"), *(len(_tokens(b)) for b in bars)])
    labels = max([len("STEP"), *(sum(map(len, _label_parts(b))) for b in bars)])
    label = min(LABEL_WIDTH, labels)
    if bar_width is not None:
        return label, bar_width
    fixed = took + tokens + COLUMN_GAPS
    width = columns - label - fixed
    if width < MIN_BAR_WIDTH:
        label = max(MIN_LABEL_WIDTH, columns - fixed - MIN_BAR_WIDTH)
        width = max(MIN_BAR_WIDTH, columns - label - fixed)
    return label, width


def gantt_view(timeline: Timeline, width: int, label_width: int = LABEL_WIDTH) -> RenderableType:
    table = Table(box=None, header_style="bold", pad_edge=False, show_edge=False)
    table.add_column("STEP", no_wrap=True, min_width=label_width, max_width=label_width)
    table.add_column(_axis(timeline, width), no_wrap=True, min_width=width, max_width=width)
    table.add_column("TOOK", justify="right", no_wrap=True)
    table.add_column("TOKENS", justify="right", no_wrap=True)
    for bar in timeline.bars:
        table.add_row(
            _label(bar, label_width), _bar_text(bar, timeline, width), _took(bar), _tokens(bar)
        )
    summary = Text.assemble(
        (f"{timeline.flow or 'execution'} ", "bold"),
        (timeline.execution_id, ""),
        (f"  {timeline.status}", "bold"),
        (f"  {seconds_text(timeline.duration_ns)}", ""),
        (f"  {timeline.counts_text()}", "dim"),
    )
    if timeline.prompt_tokens or timeline.completion_tokens:
        summary.append(
            f"  tokens {timeline.prompt_tokens} prompt + {timeline.completion_tokens} completion",
            "dim",
        )
    if timeline.attempts > 1:
        summary.append(f"  {timeline.attempts} attempts", "dim")
    return Group(summary, table)


@click.command("timeline")
@click.argument("given", metavar="ID")
@click.option(
    "--svg",
    "svg_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the chart as an SVG picture to FILE.",
)
@click.option(
    "--width",
    type=click.IntRange(min=MIN_BAR_WIDTH),
    help="Characters of the bar area (default: what the terminal has room for).",
)
@json_option
@click.pass_context
def timeline(ctx: click.Context, given: str, svg_file: Path | None, width: int | None) -> None:
    """Draw execution ID as a Gantt chart: agents, tasks, LLM and tool calls with durations
    and token counts (from its stored events; a running execution is drawn so far)."""
    state = state_of(ctx)
    if svg_file is not None and not svg_file.parent.is_dir():
        # Before asking the node anything: a typo in the path must not cost a replay.
        raise click.BadParameter(
            f"folder {str(svg_file.parent)!r} does not exist", param_hint="'--svg'"
        )

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            execution = await client.get_execution(execution_id)
            events = await client.history(execution_id)
        chart = build_timeline(events, execution_id, execution.flow)
        if state.settings.json:
            for bar in chart.bars:
                state.emit(bar.record(chart.start_ns))
        else:
            label_width, bar_width = layout(chart, state.out.width, width)
            state.out.print(gantt_view(chart, bar_width, label_width))
        if svg_file is not None:
            try:
                await asyncio.to_thread(svg_file.write_text, render_svg(chart), encoding="utf-8")
            except OSError as e:
                raise click.BadParameter(
                    f"cannot write {str(svg_file)!r}: {e.strerror or e}", param_hint="'--svg'"
                ) from None
            state.note(f"wrote {svg_file}")
        return exit_codes.OK

    execute(ctx, body)
