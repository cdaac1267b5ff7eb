"""`koco run --quote ID` and `koco run --max-cost X`: run under a quote (docs/market.md).

With `--max-cost`, `run` first asks the node for a quote whose ceiling is at most X: the
limits are the ones given (`--max-seconds`, `--max-tokens`), else derived from the flow's
price so that the ceiling fits X (what is left after the per-run part goes to run time and
tokens, half each when the price charges both). A quote whose ceiling passes X is refused
here, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation

import click
import grpc

from kodoclient._async import AsyncClient
from kodoclient.cli.context import CliState
from kodoclient.errors import KodoclientError
from kodosumi.charges import Limits
from kodosumi.pricing import price_from_pb
from kodosumi.v1 import flow_pb2


@dataclass(frozen=True, slots=True)
class QuoteChoice:
    quote_id: str = ""
    max_cost: Decimal | None = None
    max_seconds: float = 0.0
    max_tokens: int = 0


def parse_max_cost(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        cost = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter("a decimal amount", param_hint="'--max-cost'") from None
    if not cost.is_finite() or cost <= 0:
        raise click.BadParameter("an amount > 0", param_hint="'--max-cost'")
    return cost


def limits_for(flow: flow_pb2.Flow, choice: QuoteChoice) -> Limits:
    """The limits to ask for: the given ones, else what `max_cost` buys of the flow."""
    seconds, tokens = Decimal(repr(choice.max_seconds)), choice.max_tokens
    if choice.max_cost is None or not flow.HasField("price") or (seconds and tokens):
        return Limits(seconds, tokens)
    price = price_from_pb(flow.price)
    left = max(Decimal(0), choice.max_cost - price.per_run)
    dearest = max((max(r.per_1k_input, r.per_1k_output) for r in price.tokens), default=0)
    parts = (1 if price.per_second and not seconds else 0) + (1 if dearest and not tokens else 0)
    share = left / parts if parts else left
    if price.per_second and not seconds:
        seconds = (share / price.per_second).quantize(Decimal("0.001"), ROUND_FLOOR)
    if dearest and not tokens:
        tokens = int((share * 1000 / dearest).to_integral_value(ROUND_FLOOR))
    return Limits(seconds, tokens)


async def quote_for_run(
    state: CliState,
    client: AsyncClient,
    flow: flow_pb2.Flow,
    inputs: dict[str, object],
    choice: QuoteChoice,
) -> str:
    """The quote id to launch with ("" for none)."""
    if choice.quote_id or choice.max_cost is None:
        return choice.quote_id
    limits = limits_for(flow, choice)
    got = await client.quotes().request(
        flow.name,
        inputs,
        max_seconds=float(limits.max_seconds),
        max_tokens=limits.max_tokens,
    )
    if Decimal(got.ceiling) > choice.max_cost:
        raise KodoclientError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the node's quote for {flow.name} has a ceiling of {got.ceiling} "
            f"{got.price.currency}, above --max-cost {choice.max_cost}: lower --max-seconds "
            "or --max-tokens",
            reason="CEILING_ABOVE_MAX_COST",
        )
    state.note(
        f"quote {got.quote_id}: at most {got.ceiling} {got.price.currency} "
        f"(limits {got.limits.max_seconds:g} s, {got.limits.max_tokens} tokens)"
    )
    return got.quote_id
