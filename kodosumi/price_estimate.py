"""What one run of a flow costs as far as it is known before the run: the market view's
price (docs/market.md, "The market view") — one home for the registry's price ceiling and
koco's sort.

A run costs its `per_run` part plus its `per_second` part at the flow's measured median run
time (p50). Token prices depend on what the LLM will use and are not counted here (tables
show them beside the figure). A flow priced per second without a measured p50 has no known
run price: it matches no ceiling and sorts after the flows with one.
"""

from __future__ import annotations

from decimal import Decimal

from kodosumi.v1 import market_pb2

FREE = Decimal(0)


def run_price(price: market_pb2.Price, p50_seconds: float | None) -> Decimal | None:
    """The known price of one run in `price.currency` (0 for a free flow); None: unknown."""
    if not price.currency:
        return FREE
    total = Decimal(price.per_run or "0")
    if price.per_second and Decimal(price.per_second):
        if p50_seconds is None:
            return None
        total += Decimal(price.per_second) * Decimal(repr(p50_seconds))
    return total


def fits(
    price: market_pb2.Price, p50_seconds: float | None, ceiling: Decimal, currency: str
) -> bool:
    """Whether one run costs at most `ceiling` in `currency` (free flows always fit)."""
    if not price.currency:
        return True
    if price.currency != currency:
        return False
    known = run_price(price, p50_seconds)
    return known is not None and known <= ceiling
