"""`koco usage`: metered usage of a node's executions (docs/market.md, Metering), summed by
user, group, flow, node, day, month or execution over a period, as a table, `--json` (one
object per row) or `--csv`; `koco usage EXECUTION_ID` shows one run's record."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sys
from contextlib import aclosing
from typing import Any

import click
from rich.table import Table

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import json_option
from kodoclient.usage import GROUP_BY
from kodosumi.v1 import usage_pb2

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
COLUMNS = (
    "runs",
    "attempts",
    "wall_seconds",
    "cpu_seconds",
    "llm_calls",
    "input_tokens",
    "output_tokens",
    "tool_calls",
    "input_bytes",
    "output_bytes",
    "artifact_bytes",
)


def parse_time(value: str, now: dt.datetime | None = None) -> int:
    """Nanoseconds since the epoch of `2026-12-01`, `2026-12-01T10:00` (UTC unless it names a
    zone), or a time ago: `90m`, `24h`, `7d`."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        now = now or dt.datetime.now(dt.UTC)
        ago = dt.timedelta(seconds=int(relative[1]) * _UNIT_SECONDS[relative[2]])
        return int((now - ago).timestamp()) * 1_000_000_000
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: a date (2026-12-01), a time (2026-12-01T10:00) or an age (24h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1_000_000_000


def _time_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int:
    return parse_time(value) if value else 0


def totals_dict(totals: usage_pb2.UsageTotals) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(totals, name) for name in COLUMNS}
    data["wall_seconds"] = round(totals.wall_seconds, 6)
    data["cpu_seconds"] = round(totals.cpu_seconds, 6)
    data["models"] = [
        {
            "model": m.model,
            "calls": m.calls,
            "input_tokens": m.input_tokens,
            "output_tokens": m.output_tokens,
        }
        for m in totals.models
    ]
    return data


def _models_text(totals: usage_pb2.UsageTotals) -> str:
    return "; ".join(
        f"{m.model or '?'} {m.calls}x {m.input_tokens}/{m.output_tokens}" for m in totals.models
    )


def _table(key_title: str, rows: list[tuple[str, usage_pb2.UsageTotals]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column(key_title.upper(), overflow="fold")
    for title in ("RUNS", "ATT", "WALL s", "CPU s", "LLM", "TOK IN", "TOK OUT", "TOOLS"):
        table.add_column(title, justify="right")
    for title in ("IN B", "OUT B", "ART B"):
        table.add_column(title, justify="right")
    table.add_column("MODELS (calls in/out)", overflow="fold")
    for key, t in rows:
        table.add_row(
            key or "-",
            str(t.runs),
            str(t.attempts),
            f"{t.wall_seconds:.1f}",
            f"{t.cpu_seconds:.1f}",
            str(t.llm_calls),
            str(t.input_tokens),
            str(t.output_tokens),
            str(t.tool_calls),
            str(t.input_bytes),
            str(t.output_bytes),
            str(t.artifact_bytes),
            _models_text(t),
        )
    return table


def _csv(key_title: str, rows: list[tuple[str, usage_pb2.UsageTotals]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([key_title, *COLUMNS, "models"])
    for key, t in rows:
        data = totals_dict(t)
        writer.writerow([key, *(data[c] for c in COLUMNS), _models_text(t)])


def _show_record(
    state: CliState, record: usage_pb2.GetExecutionUsageResponse, as_csv: bool
) -> None:
    if state.settings.json:
        state.emit(
            {
                "execution_id": record.execution_id,
                "attempts": [
                    {
                        "attempt": a.usage.attempt,
                        "source": a.source,
                        "note": a.note,
                        "node_id": a.node_id,
                        "recorded_unix_nano": a.recorded_unix_nano,
                        **totals_dict(_attempt_totals(a)),
                    }
                    for a in record.attempts
                ],
                "own": totals_dict(record.own),
                "children": totals_dict(record.children),
                "total": totals_dict(record.total),
            }
        )
        return
    rows = [(f"attempt {a.usage.attempt}", _attempt_totals(a)) for a in record.attempts]
    rows += [("own", record.own), ("children", record.children), ("total", record.total)]
    if as_csv:
        _csv("part", rows)
        return
    state.show_table(_table("part", rows))
    for a in record.attempts:
        if a.source != "engine":
            state.note(f"attempt {a.usage.attempt}: recorded by the {a.source}: {a.note}")


def _attempt_totals(a: usage_pb2.AttemptUsageRecord) -> usage_pb2.UsageTotals:
    u = a.usage
    return usage_pb2.UsageTotals(
        runs=1,
        attempts=1,
        wall_seconds=u.wall_seconds,
        cpu_seconds=u.cpu_seconds,
        llm_calls=u.llm_calls,
        tool_calls=u.tool_calls,
        input_bytes=u.input_bytes,
        output_bytes=u.output_bytes,
        artifact_bytes=u.artifact_bytes,
        models=list(u.models),
        input_tokens=sum(m.input_tokens for m in u.models),
        output_tokens=sum(m.output_tokens for m in u.models),
    )


@click.command("usage")
@click.argument("execution_id", required=False, default="")
@click.option(
    "--by",
    "group_by",
    type=click.Choice(GROUP_BY),
    default="flow",
    show_default=True,
    help="Sum per this key (day and month are UTC).",
)
@click.option("--since", callback=_time_option, help="From this time on (2026-12-01, 7d).")
@click.option("--until", callback=_time_option, help="Before this time (2026-12-05T12:00, 1h).")
@click.option("--flow", default="", help="Only runs of this flow.")
@click.option("--user", default="", help="Only this user's runs (operators and admins).")
@click.option("--group", default="", help="Only runs of owners in this group.")
@click.option("--node", "node_id", default="", help="Only attempts that ran on this node.")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values with a header.")
@json_option
@click.pass_context
def usage(
    ctx: click.Context,
    execution_id: str,
    group_by: str,
    since: int,
    until: int,
    flow: str,
    user: str,
    group: str,
    node_id: str,
    as_csv: bool,
) -> None:
    """Metered usage: wall and CPU time, LLM calls and tokens, tool calls, bytes.

    Without EXECUTION_ID, your runs (everyone's for operators and admins) summed per
    --by key; with it, that run's attempts and its children's usage rolled up.
    """
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            if execution_id:
                full = await resolve_execution_id(client, execution_id)
                _show_record(state, await client.usage().execution_usage(full), as_csv)
                return exit_codes.OK
            rows: list[tuple[str, usage_pb2.UsageTotals]] = []
            listing = client.usage().list_usage(
                group_by=group_by,
                user=user,
                group=group,
                flow=flow,
                node=node_id,
                since_unix_nano=since,
                until_unix_nano=until,
            )
            async with aclosing(listing) as found:
                async for row in found:
                    if state.settings.json:
                        state.emit({group_by: row.key, **totals_dict(row.totals)})
                    else:
                        rows.append((row.key, row.totals))
        if state.settings.json:
            return exit_codes.OK
        if as_csv:
            _csv(group_by, rows)
        elif rows:
            state.show_table(_table(group_by, rows))
        else:
            state.note("no usage recorded")
        return exit_codes.OK

    execute(ctx, body)
