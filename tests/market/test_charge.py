"""`kodosumi.pricing.charge`: a price applied to one run's metered usage, exact in decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kodosumi.errors import InvalidArgument
from kodosumi.pricing import charge, price_from_mapping
from kodosumi.v1 import market_pb2, usage_pb2
from kodosumid.event_store import ModelUse, UsageTotals

PRICE = price_from_mapping(
    {
        "currency": "EUR",
        "per_run": "0.05",
        "per_second": 0.001,
        "tokens": {"gpt-4o": {"input": 0.0025, "output": 0.01}, "*": {"input": 0.001}},
    },
    "price",
)


def test_each_part_adds_up_exactly() -> None:
    usage = UsageTotals(
        wall_seconds=2.5,
        models=(ModelUse("gpt-4o", 3, 1000, 200), ModelUse("local", 1, 500, 999)),
    )
    # 0.05 + 0.001 * 2.5 + (0.0025 * 1 + 0.01 * 0.2) + 0.001 * 0.5 (no output rate for "*")
    assert charge(PRICE, usage) == Decimal("0.0575")


def test_every_form_of_usage_is_priced_alike() -> None:
    message = market_pb2.Usage(wall_seconds=0.1)
    message.models.add(model="gpt-4o", input_tokens=7, output_tokens=3)
    totals = usage_pb2.UsageTotals(wall_seconds=0.1, models=list(message.models))
    assert charge(PRICE, message) == charge(PRICE, totals) == Decimal("0.050147500")


def test_a_free_run_and_an_unpriced_model_cost_nothing() -> None:
    only_tokens = price_from_mapping({"currency": "USDC", "tokens": {"m": {"output": 1}}}, "p")
    assert charge(only_tokens, UsageTotals(wall_seconds=100.0)) == Decimal(0)
    used = UsageTotals(models=(ModelUse("other", 1, 10**6, 10**6),))
    assert charge(only_tokens, used) == Decimal(0)


def test_rounding_is_half_up_at_nine_places() -> None:
    tiny = price_from_mapping({"currency": "EUR", "per_second": "0.000000001"}, "p")
    assert charge(tiny, UsageTotals(wall_seconds=0.5)) == Decimal("0.000000001")
    assert charge(tiny, UsageTotals(wall_seconds=0.4)) == Decimal(0)


def test_a_broken_usage_figure_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        charge(PRICE, UsageTotals(wall_seconds=float("nan")))
    with pytest.raises(InvalidArgument):
        charge(PRICE, UsageTotals(wall_seconds=-1.0))
