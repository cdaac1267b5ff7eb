"""What a run costs under a flow's price (docs/market.md), beyond `kodosumi.pricing.charge`
(the price applied to a run's usage): the free allowance, the ceiling of a quote, and the
exact parts the node meters a running run by.

- `cost(price, metered)`: `pricing.charge` of a `Metered` run (per run, plus per second of
  run time, plus per 1000 tokens in and out by model, `"*"` for a model not listed),
  refused at 10^18.
- `charge(price, metered, used)`: the same after the user's free allowance for the period
  (`used`: what the user's earlier runs of the flow took of it), and what this run takes.
- `ceiling(price, limits)`: the most a run within `limits` (seconds, tokens) can cost, the
  cost ceiling of a quote.

Every figure is a `Decimal`, computed exactly (a context of 80 digits: 18 + 9 digits of a rate
times 20 digits of a token count never round) and rounded once, at the end, half up to the 9
places amounts have, as `pricing.charge` rounds. Negative inputs are refused (`ValueError`);
a result at or above 10^18 is `AmountOverflow`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Context, Decimal, localcontext

from kodosumi.pricing import (
    MAX_FRACTION_DIGITS,
    MAX_INTEGER_DIGITS,
    Price,
    TokenRate,
    token_rate,
)
from kodosumi.pricing import (
    charge as price_charge,
)

MAX_AMOUNT = Decimal(10) ** MAX_INTEGER_DIGITS
QUANTUM = Decimal(10) ** -MAX_FRACTION_DIGITS
# Run time is billed to the millisecond.
SECONDS_QUANTUM = Decimal("0.001")
_EXACT = Context(prec=80)
_ZERO = Decimal(0)
_THOUSAND = Decimal(1000)


class AmountOverflow(ValueError):
    """The amount reaches 10^18, beyond what an amount may be."""


@dataclass(frozen=True, slots=True)
class TokenUse:
    """One model's tokens (a `pricing.ModelTokens`)."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Metered:
    """What a run used, as far as prices go: run time and LLM tokens per model (a
    `pricing.MeteredRun`)."""

    seconds: Decimal = _ZERO
    tokens: tuple[TokenUse, ...] = ()

    def __post_init__(self) -> None:
        if not self.seconds.is_finite() or self.seconds < 0:
            raise ValueError("seconds: a finite number >= 0")
        for t in self.tokens:
            if t.input_tokens < 0 or t.output_tokens < 0:
                raise ValueError(f"tokens of {t.model!r}: >= 0")

    @property
    def total_tokens(self) -> int:
        return sum(t.input_tokens + t.output_tokens for t in self.tokens)

    @property
    def wall_seconds(self) -> float:
        return float(self.seconds)  # exact: milliseconds up to 10^9 s fit a float

    @property
    def models(self) -> tuple[TokenUse, ...]:
        return self.tokens

    def __add__(self, other: Metered) -> Metered:
        merged: dict[str, tuple[int, int]] = {}
        for t in (*self.tokens, *other.tokens):
            i, o = merged.get(t.model, (0, 0))
            merged[t.model] = (i + t.input_tokens, o + t.output_tokens)
        return Metered(
            self.seconds + other.seconds,
            tuple(TokenUse(m, i, o) for m, (i, o) in sorted(merged.items())),
        )


def billed_seconds(seconds: float) -> Decimal:
    """Wall seconds as billed: a finite float >= 0, to the millisecond (rounded up)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("seconds: a finite number >= 0")
    return Decimal(repr(seconds)).quantize(SECONDS_QUANTUM, rounding=ROUND_CEILING)


def rate_of(price: Price, model: str) -> TokenRate:
    """The token rate of `model` (`pricing.token_rate`), zero when it has none."""
    return token_rate(price, model) or TokenRate(model)


def _check(value: Decimal) -> Decimal:
    if value >= MAX_AMOUNT:
        raise AmountOverflow(f"the amount {value:.0f} reaches 10^{MAX_INTEGER_DIGITS}")
    return value


def variable_cost(price: Price, metered: Metered) -> Decimal:
    """The run-time and token parts, exact (not rounded): additive over `Metered` sums."""
    with localcontext(_EXACT):
        total = price.per_second * metered.seconds
        for t in metered.tokens:
            rate = rate_of(price, t.model)
            total += (
                rate.per_1k_input * t.input_tokens + rate.per_1k_output * t.output_tokens
            ) / _THOUSAND
        return total


def cost(price: Price, metered: Metered) -> Decimal:
    """The price of a run that used `metered`, before any free allowance."""
    return _check(price_charge(price, metered))


@dataclass(frozen=True, slots=True)
class FreeUsed:
    """What runs took of a free allowance (in a period): runs, seconds, tokens."""

    runs: int = 0
    seconds: Decimal = _ZERO
    tokens: int = 0

    def __add__(self, other: FreeUsed) -> FreeUsed:
        return FreeUsed(
            self.runs + other.runs, self.seconds + other.seconds, self.tokens + other.tokens
        )


@dataclass(frozen=True, slots=True)
class Charge:
    amount: Decimal
    # What this run took of the free allowance (counted for the user's later runs).
    free: FreeUsed = field(default_factory=FreeUsed)


def _without_free_tokens(price: Price, metered: Metered, free: int) -> Metered:
    """`metered` less `free` tokens, taken from the dearest first (the user's favour)."""
    metered = Metered() + metered  # one entry per model
    parts = []
    for t in metered.tokens:
        rate = rate_of(price, t.model)
        parts.append((rate.per_1k_input, t.model, "input", t.input_tokens))
        parts.append((rate.per_1k_output, t.model, "output", t.output_tokens))
    parts.sort(key=lambda p: (-p[0], p[1], p[2]))
    left: dict[tuple[str, str], int] = {}
    for _, model, side, count in parts:
        taken = min(free, count)
        free -= taken
        left[(model, side)] = count - taken
    return Metered(
        metered.seconds,
        tuple(
            TokenUse(t.model, left[(t.model, "input")], left[(t.model, "output")])
            for t in metered.tokens
        ),
    )


def charge(price: Price, metered: Metered, used: FreeUsed | None = None) -> Charge:
    """What the run is charged after the free allowance `used` leaves: a free run while runs
    are left (the whole run), else free seconds and tokens off the run time and tokens."""
    allowance = price.free
    if allowance is None:
        return Charge(cost(price, metered))
    used = used or FreeUsed()
    if used.runs < allowance.runs:
        return Charge(_ZERO, FreeUsed(runs=1))
    seconds_left = max(_ZERO, billed_seconds(allowance.seconds) - used.seconds)
    free_seconds = min(seconds_left, metered.seconds)
    free_tokens = min(max(0, allowance.tokens - used.tokens), metered.total_tokens)
    rest = _without_free_tokens(
        price, Metered(metered.seconds - free_seconds, metered.tokens), free_tokens
    )
    return Charge(cost(price, rest), FreeUsed(0, free_seconds, free_tokens))


@dataclass(frozen=True, slots=True)
class Limits:
    """What a quoted run may use at most: run time and LLM tokens (all models together)."""

    max_seconds: Decimal = _ZERO
    max_tokens: int = 0


def ceiling(price: Price, limits: Limits) -> Decimal:
    """The most a run within `limits` costs: per run, plus the run time, plus every token at
    the dearest rate of the price (rounded up)."""
    if limits.max_seconds < 0 or limits.max_tokens < 0:
        raise ValueError("limits: >= 0")
    dearest = max((max(r.per_1k_input, r.per_1k_output) for r in price.tokens), default=_ZERO)
    with localcontext(_EXACT):
        top = (
            price.per_run
            + price.per_second * limits.max_seconds
            + dearest * limits.max_tokens / _THOUSAND
        )
        return _check(top).quantize(QUANTUM, rounding=ROUND_CEILING)


def amount_text(value: Decimal) -> str:
    """An amount as it travels and is signed: plain decimal digits, no exponent, no
    trailing zeros ("0.05", "12", "0")."""
    return format(value.normalize(), "f") if value else "0"


def period_start(period: str, now: dt.datetime) -> dt.datetime:
    """The start of the UTC calendar period (`day`, `month`) `now` is in."""
    now = now.astimezone(dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)
