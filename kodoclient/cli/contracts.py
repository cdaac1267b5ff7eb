"""`koco quote FLOW` and `koco receipt ID`: contracts with a node (docs/market.md).

`quote` asks the node for a signed quote (price terms, cost ceiling for the limits given,
the node's measured service, expiry) and prints it, or writes quote.json (`-o`); launch
with it by `koco run FLOW --quote ID`. `receipt` fetches the signed receipt of an ended run
and prints it or writes receipt.json. Both files are checked offline by `koco verify`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from google.protobuf.timestamp_pb2 import Timestamp

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.contract_files import contract_document, write_contract
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.ids import resolve_execution_id
from kodoclient.cli.options import inputs_from, inputs_options, json_option
from kodoclient.events import status_name
from kodosumi.pricing import price_text
from kodosumi.v1 import quote_pb2

_OUT = click.Path(dir_okay=False, path_type=Path)


def _when(stamp: Timestamp) -> str:
    return stamp.ToDatetime(dt.UTC).isoformat(timespec="seconds")


def _say_quote(state: CliState, quote: quote_pb2.Quote) -> None:
    s = quote.stats
    price = price_text(quote.price)
    lines = [
        f"quote {quote.quote_id} from node {quote.node_id}",
        f"  flow      {quote.flow}"
        + (f" (version {quote.flow_version})" if quote.flow_version else ""),
        f"  price     {price}",
        f"  ceiling   {quote.ceiling} {quote.price.currency}".rstrip()
        + f"  (limits: {quote.limits.max_seconds:g} s, {quote.limits.max_tokens} tokens)",
        f"  measured  {s.runs} runs, {s.success_rate:.1%} succeeded, "
        f"p50 {s.p50_seconds:g} s, p95 {s.p95_seconds:g} s",
        f"  for       {quote.requester}",
        f"  expires   {_when(quote.expire_time)}",
        f"  inputs    sha256 {quote.inputs_sha256}",
    ]
    state.out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _emit(state: CliState, token: str, out: Path | None) -> None:
    if out is not None:
        write_contract(out, token)
        state.note(f"wrote {out}")
    if state.settings.json:
        state.emit(contract_document(token))


@click.command("quote")
@click.argument("flow")
@inputs_options
@click.option("--max-seconds", type=float, default=0.0, help="Run time the run may use at most.")
@click.option("--max-tokens", type=int, default=0, help="LLM tokens the run may use at most.")
@click.option(
    "--valid", "valid_seconds", type=float, default=0.0, help="Seconds the quote stays valid."
)
@click.option("-o", "--output", "out", type=_OUT, help="Write the quote as JSON to this file.")
@json_option
@click.pass_context
def quote(
    ctx: click.Context,
    flow: str,
    assignments: tuple[str, ...],
    inputs_json: str | None,
    max_seconds: float,
    max_tokens: int,
    valid_seconds: float,
    out: Path | None,
) -> None:
    """Ask the node for a signed quote to run FLOW with these inputs within the limits."""
    state = state_of(ctx)
    inputs = inputs_from(assignments, inputs_json)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            got = await client.quotes().request(
                flow,
                inputs,
                max_seconds=max_seconds,
                max_tokens=max_tokens,
                valid_seconds=valid_seconds,
            )
        if not state.settings.json:
            _say_quote(state, got)
            state.note(f"launch with it: koco run {flow} --quote {got.quote_id} (same inputs)")
        _emit(state, got.token, out)
        return exit_codes.OK

    execute(ctx, body)


def _say_receipt(state: CliState, r: quote_pb2.Receipt) -> None:
    u = r.usage
    tokens = ", ".join(f"{m.model} {m.input_tokens}/{m.output_tokens} tok" for m in u.models)
    status = status_name(r.status)
    lines = [
        f"receipt {r.receipt_id} from node {r.node_id}",
        f"  execution {r.execution_id} ({r.flow}) {status}"
        + (f": {r.status_reason}" if r.status_reason else ""),
        f"  quote     {r.quote_id or '(none)'}",
        f"  usage     {u.wall_seconds:g} s, {u.attempt} attempt(s), {u.llm_calls} LLM calls"
        + (f" ({tokens})" if tokens else "")
        + f", {u.tool_calls} tool calls",
        f"  amount    {r.amount} {r.currency}".rstrip(),
        f"  owner     {r.owner}",
        f"  issued    {_when(r.issue_time)}",
    ]
    state.out.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


@click.command("receipt")
@click.argument("given", metavar="ID")
@click.option("-o", "--output", "out", type=_OUT, help="Write the receipt as JSON to this file.")
@json_option
@click.pass_context
def receipt(ctx: click.Context, given: str, out: Path | None) -> None:
    """Fetch the signed receipt of execution ID (yours; admins: any)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with AsyncClient(state.settings.connect_config()) as client:
            execution_id = await resolve_execution_id(client, given)
            got = await client.quotes().receipt(execution_id)
        if not state.settings.json:
            _say_receipt(state, got)
        _emit(state, got.token, out)
        return exit_codes.OK

    execute(ctx, body)
