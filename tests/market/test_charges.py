"""The pricing arithmetic (kodosumi/charges.py): exact decimals, the free allowance, the
ceiling of a quote; properties over generated prices and usage (additivity, monotonicity,
a run within its limits never costs more than the ceiling)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kodosumi.charges import (
    AmountOverflow,
    FreeUsed,
    Limits,
    Metered,
    TokenUse,
    billed_seconds,
    ceiling,
    charge,
    cost,
    period_start,
    variable_cost,
)
from kodosumi.pricing import FreeAllowance, Price, TokenRate, price_from_mapping

D = Decimal
PRICE = price_from_mapping(
    {
        "currency": "EUR",
        "per_run": "0.05",
        "per_second": "0.001",
        "tokens": {"gpt-4o": {"input": "0.0025", "output": "0.01"}, "*": {"input": "0.001"}},
    },
    "price",
)


def test_a_run_costs_its_parts_exactly() -> None:
    used = Metered(D("2.5"), (TokenUse("gpt-4o", 1000, 500), TokenUse("other", 2000, 7)))
    # 0.05 + 2.5 * 0.001 + (1000 * 0.0025 + 500 * 0.01) / 1000 + 2000 * 0.001 / 1000
    assert cost(PRICE, used) == D("0.05") + D("0.0025") + D("0.0075") + D("0.002")
    assert cost(PRICE, Metered()) == D("0.05")


def test_a_model_without_a_rate_and_no_fallback_is_not_charged() -> None:
    price = Price("EUR", tokens=(TokenRate("gpt-4o", D(1), D(1)),))
    assert cost(price, Metered(tokens=(TokenUse("llama", 10**6, 10**6),))) == 0


def test_negative_usage_and_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Metered(D(-1))
    with pytest.raises(ValueError, match="tokens"):
        Metered(tokens=(TokenUse("m", -1, 0),))
    with pytest.raises(ValueError):
        billed_seconds(float("nan"))
    huge = Price("EUR", per_run=D("999999999999999999"), per_second=D(1))
    with pytest.raises(AmountOverflow):
        cost(huge, Metered(D(10)))
    with pytest.raises(AmountOverflow):
        ceiling(huge, Limits(D(1), 0))


def test_the_ceiling_takes_every_token_at_the_dearest_rate() -> None:
    assert ceiling(PRICE, Limits(D(60), 10_000)) == D("0.05") + D("0.06") + D("0.1")


def test_free_runs_then_free_seconds_and_tokens() -> None:
    price = Price(
        "EUR",
        per_run=D(1),
        per_second=D(1),
        tokens=(TokenRate("*", D(1), D(2)),),
        free=FreeAllowance(runs=1, seconds=10, tokens=1500),
    )
    run = Metered(D(4), (TokenUse("m", 1000, 1000),))
    first = charge(price, run)
    assert first.amount == 0 and first.free == FreeUsed(runs=1)
    # The run is used; 10 s and 1500 tokens are left: the dearer output tokens go first.
    second = charge(price, run, FreeUsed(runs=1))
    assert second.free == FreeUsed(0, D(4), 1500)
    assert second.amount == D(1) + D("0.5")  # per run + 500 input tokens at 1/1k
    spent = FreeUsed(1, D(10), 1500)
    assert charge(price, run, spent).amount == cost(price, run)


def test_periods_are_utc_calendar_periods() -> None:
    at = dt.datetime(2026, 12, 5, 13, 7, tzinfo=dt.UTC)
    assert period_start("day", at) == dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    assert period_start("month", at) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


amounts = st.decimals(min_value=0, max_value=1000, places=9, allow_nan=False)
models = st.sampled_from(["gpt-4o", "claude", "*", "offline/scripted"])
rates = st.builds(TokenRate, models, amounts, amounts)
prices = st.builds(
    Price,
    st.just("EUR"),
    amounts,
    amounts,
    st.lists(rates, max_size=4, unique_by=lambda r: r.model).map(tuple),
)
tokens = st.builds(TokenUse, models, st.integers(0, 10**9), st.integers(0, 10**9))
usage = st.builds(
    Metered,
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    st.lists(tokens, max_size=4).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(prices, usage, usage)
def test_the_variable_cost_is_additive(price: Price, a: Metered, b: Metered) -> None:
    assert variable_cost(price, a + b) == variable_cost(price, a) + variable_cost(price, b)


@settings(max_examples=200, deadline=None)
@given(prices, usage, usage)
def test_more_usage_never_costs_less(price: Price, a: Metered, b: Metered) -> None:
    assert cost(price, a + b) >= cost(price, a)
    assert charge(price, a + b).amount >= charge(price, a).amount


@settings(max_examples=200, deadline=None)
@given(prices, usage, st.integers(0, 5), st.integers(0, 10**6), st.integers(0, 10**10))
def test_a_free_allowance_never_costs_more(
    price: Price, run: Metered, runs: int, seconds: int, free_tokens: int
) -> None:
    free = Price(
        price.currency,
        price.per_run,
        price.per_second,
        price.tokens,
        FreeAllowance(runs=runs, seconds=seconds, tokens=free_tokens),
    )
    charged = charge(free, run)
    assert 0 <= charged.amount <= cost(price, run)
    assert charged.free.seconds <= run.seconds and charged.free.tokens <= run.total_tokens


@settings(max_examples=200, deadline=None)
@given(prices, usage)
def test_a_run_within_its_limits_stays_under_the_ceiling(price: Price, run: Metered) -> None:
    limits = Limits(run.seconds, run.total_tokens)
    assert cost(price, run) <= ceiling(price, limits)
