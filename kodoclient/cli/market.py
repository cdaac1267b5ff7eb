"""`koco market`: search the network's flows (the registry's flow offers) by tag, text, price
ceiling, badge level and measured p95, sorted as asked (docs/market.md, "The market view").

The registry filters (it knows the measures and the badges; a bad filter comes back as
INVALID_ARGUMENT naming it); koco sorts what it gets, since a page order other than by name
would not survive paging.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.records import record
from kodoclient.cli.tables import registry_state_text
from kodoclient.registry import RegistryClient
from kodosumi.price_estimate import run_price
from kodosumi.pricing import price_text
from kodosumi.v1 import registry_pb2 as rpb

SORTS = ("name", "price", "p95", "success")


def _p50(offer: rpb.FlowOffer) -> float | None:
    service = offer.service
    return service.p50_seconds if service.successes + service.failures else None


def offer_run_price(offer: rpb.FlowOffer) -> Decimal | None:
    return run_price(offer.flow.price, _p50(offer))


def _measured(offer: rpb.FlowOffer) -> bool:
    return offer.HasField("service") and offer.service.successes + offer.service.failures > 0


def _by_name(offer: rpb.FlowOffer) -> tuple[Any, ...]:
    return (offer.flow.name, offer.flow.node_id)


def _by_price(offer: rpb.FlowOffer) -> tuple[Any, ...]:
    # Free first, then by currency and amount; a price not known in advance last.
    known = offer_run_price(offer)
    currency = offer.flow.price.currency if known else ""
    return (known is None, currency, known or Decimal(0), *_by_name(offer))


def _by_p95(offer: rpb.FlowOffer) -> tuple[Any, ...]:
    p95 = offer.service.p95_seconds if _measured(offer) else math.inf
    return (p95, *_by_name(offer))


def _by_success(offer: rpb.FlowOffer) -> tuple[Any, ...]:
    rate = offer.service.success_rate if _measured(offer) else -1.0
    return (-rate, -offer.service.runs, *_by_name(offer))


ORDER: dict[str, Callable[[rpb.FlowOffer], tuple[Any, ...]]] = {
    "name": _by_name,
    "price": _by_price,
    "p95": _by_p95,
    "success": _by_success,
}


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def market_table(offers: Iterable[rpb.FlowOffer]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("FLOW", "NODE", "STATE", "PRICE", "BADGE", "RUNS", "SUCCESS", "P50", "P95"):
        table.add_column(column, no_wrap=column != "PRICE", overflow="fold")
    table.add_column("AVAIL", no_wrap=True)
    table.add_column("TAGS", overflow="fold")
    for offer in offers:
        service = offer.service
        measured = _measured(offer)
        table.add_row(
            Text(offer.flow.name, "bold"),
            offer.flow.node_id,
            registry_state_text(offer.node_state),
            price_text(offer.flow.price),
            Text(service.badge_level, "green") if service.badge_level else Text("-", "dim"),
            str(service.runs) if offer.HasField("service") else "-",
            f"{service.success_rate:.1%}" if measured else "-",
            _seconds(service.p50_seconds) if measured else "-",
            _seconds(service.p95_seconds) if measured else "-",
            f"{service.availability:.2%}" if offer.HasField("service") else "-",
            ", ".join(offer.flow.tags),
        )
    return table


@click.command("market")
@click.option("--tag", default="", help="Only flows with this tag.")
@click.option("--text", default="", help="Only flows whose name, description or tags say this.")
@click.option(
    "--max-price",
    default="",
    metavar="AMOUNT",
    help="Only flows a run of which costs at most this (per run + per second at the p50; "
    "free flows always match). Needs --currency.",
)
@click.option("--currency", default="", metavar="CODE", help="The currency of --max-price.")
@click.option(
    "--badge", default="", metavar="LEVEL", help="Only flows holding this level or better."
)
@click.option(
    "--max-p95", type=float, default=None, metavar="SECONDS", help="Only flows measured this fast."
)
@click.option("--sort", type=click.Choice(SORTS), default="name", show_default=True)
@registry_option
@json_option
@click.pass_context
def market(
    ctx: click.Context,
    tag: str,
    text: str,
    max_price: str,
    currency: str,
    badge: str,
    max_p95: float | None,
    sort: str,
    registry: str | None,
) -> None:
    """Search the network's flows: price, badge level and measured service, one row per
    node and flow (--json: one offer per line, with its `run_price`)."""
    state = state_of(ctx)
    filters = rpb.ListFlowOffersRequest(
        text=text, max_price=max_price, currency=currency, min_badge_level=badge
    )
    if max_p95 is not None:
        if not math.isfinite(max_p95):
            raise click.BadParameter("a number of seconds", param_hint="--max-p95")
        filters.max_p95.FromNanoseconds(round(max_p95 * 1e9))

    async def body() -> ExitCode:
        async with RegistryClient(registry_target(state, registry)) as client:
            offers = await client.list_flow_offers(tag=tag, market=filters)
        offers.sort(key=ORDER[sort])
        if state.settings.json:
            for offer in offers:
                known = offer_run_price(offer)
                state.emit({**record(offer), "run_price": None if known is None else str(known)})
        elif offers:
            state.show_table(market_table(offers))
        else:
            state.note(f"no flows in the registry at {client.address} match")
        return exit_codes.OK

    execute(ctx, body)
