"""Flow prices (docs/market.md): the one model the node's catalog, the registry and koco share.

A `Price` is read from a catalog entry's `price` table (`price_from_mapping`), travels as the
`kodosumi.v1.Price` message on the flow (`price_to_pb`), is checked again where a node's
message arrives (`price_problems`: the registry does not trust what a node announces), is
shown in one line (`price_text`), and is applied to a run's metered usage (`charge`). Amounts
are `Decimal`s: money is never a binary float.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext
from typing import Any, Protocol

from kodosumi.errors import InvalidArgument
from kodosumi.v1 import market_pb2

# ISO 4217 ("EUR") or a token symbol ("USDC", "ADA"): upper case, so "eur" is a mistake to
# name, not a second currency to keep apart.
CURRENCY = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
MODEL = re.compile(r"^[\w.:/@*+-]{1,200}$")
MAX_INTEGER_DIGITS = 18
MAX_FRACTION_DIGITS = 9
MAX_TOKEN_RATES = 64
PERIODS = ("day", "month")
ANY_MODEL = "*"


@dataclass(frozen=True, slots=True)
class TokenRate:
    model: str
    per_1k_input: Decimal = Decimal(0)
    per_1k_output: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class FreeAllowance:
    runs: int = 0
    seconds: float = 0.0
    tokens: int = 0
    period: str = "month"


@dataclass(frozen=True, slots=True)
class Price:
    currency: str
    per_run: Decimal = Decimal(0)
    per_second: Decimal = Decimal(0)
    tokens: tuple[TokenRate, ...] = ()
    free: FreeAllowance | None = None


def amount(value: object, where: str) -> Decimal:
    """A non-negative decimal amount from a TOML number or string, exact to 9 places."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidArgument.field(where, "an amount: a number or a decimal string")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument.field(where, "a finite amount")
    try:
        # str() first: 0.1 in TOML means the decimal 0.1, not the float nearest to it.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidArgument.field(where, f"a decimal amount, not {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise InvalidArgument.field(where, "a finite amount")
    if number < 0:
        raise InvalidArgument.field(where, "an amount >= 0")
    if number >= Decimal(10) ** MAX_INTEGER_DIGITS:
        raise InvalidArgument.field(where, f"below 10^{MAX_INTEGER_DIGITS}")
    if number.quantize(Decimal(10) ** -MAX_FRACTION_DIGITS) != number:
        raise InvalidArgument.field(where, f"at most {MAX_FRACTION_DIGITS} decimal places")
    return number.normalize() if number else Decimal(0)


def _whole(value: object, where: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise InvalidArgument.field(where, f"a whole number from 0 to {top}")
    return value


def _free(raw: object, where: str) -> FreeAllowance:
    if not isinstance(raw, dict):
        raise InvalidArgument.field(where, "a table: { runs, seconds, tokens, period }")
    _only(raw, ("runs", "seconds", "tokens", "period"), where)
    seconds = raw.get("seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 1e9:
        raise InvalidArgument.field(f"{where}.seconds", "seconds from 0 to 1e9")
    period = raw.get("period", "month")
    if period not in PERIODS:
        raise InvalidArgument.field(f"{where}.period", f"one of {', '.join(PERIODS)}")
    return FreeAllowance(
        runs=_whole(raw.get("runs", 0), f"{where}.runs", 2**32 - 1),
        seconds=float(seconds),
        tokens=_whole(raw.get("tokens", 0), f"{where}.tokens", 2**63 - 1),
        period=str(period),
    )


def _only(raw: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    # A misspelt key ("per_runs") would silently make a flow free: refuse it.
    for key in raw:
        if key not in keys:
            raise InvalidArgument.field(f"{where}.{key}", f"unknown key; one of {', '.join(keys)}")


def _token_rates(raw: object, where: str) -> tuple[TokenRate, ...]:
    if not isinstance(raw, dict):
        raise InvalidArgument.field(where, 'a table: model = { input, output } ("*": any model)')
    if len(raw) > MAX_TOKEN_RATES:
        raise InvalidArgument.field(where, f"at most {MAX_TOKEN_RATES} models")
    rates = []
    for model, rate in raw.items():
        spot = f"{where}.{model}"
        if not MODEL.match(model):
            raise InvalidArgument.field(spot, "a model name (letters, digits, . : / @ * + - _)")
        if not isinstance(rate, dict):
            raise InvalidArgument.field(spot, "a table: { input, output } per 1000 tokens")
        _only(rate, ("input", "output"), spot)
        rates.append(
            TokenRate(
                model,
                amount(rate.get("input", 0), f"{spot}.input"),
                amount(rate.get("output", 0), f"{spot}.output"),
            )
        )
    return tuple(rates)


def price_from_mapping(raw: object, where: str) -> Price:
    """The catalog's `price` table; every mistake names its key (`flows[2].price.per_run`)."""
    if not isinstance(raw, dict):
        raise InvalidArgument.field(
            where, "a table: { currency, per_run, per_second, tokens, free }"
        )
    _only(raw, ("currency", "per_run", "per_second", "tokens", "free"), where)
    currency = raw.get("currency")
    if not isinstance(currency, str) or not CURRENCY.match(currency):
        raise InvalidArgument.field(
            f"{where}.currency", 'an ISO 4217 code or token symbol in upper case ("EUR", "USDC")'
        )
    price = Price(
        currency=currency,
        per_run=amount(raw.get("per_run", 0), f"{where}.per_run"),
        per_second=amount(raw.get("per_second", 0), f"{where}.per_second"),
        tokens=_token_rates(raw.get("tokens", {}), f"{where}.tokens"),
        free=_free(raw["free"], f"{where}.free") if "free" in raw else None,
    )
    if not {"per_run", "per_second", "tokens"} & raw.keys():
        raise InvalidArgument.field(where, "names per_run, per_second or tokens (or several)")
    return price


def _text(value: Decimal) -> str:
    return format(value, "f")


def price_to_pb(price: Price, message: market_pb2.Price) -> None:
    message.currency = price.currency
    message.per_run = _text(price.per_run) if price.per_run else ""
    message.per_second = _text(price.per_second) if price.per_second else ""
    for rate in price.tokens:
        message.tokens.add(
            model=rate.model,
            per_1k_input=_text(rate.per_1k_input),
            per_1k_output=_text(rate.per_1k_output),
        )
    if price.free is not None:
        message.free.runs = price.free.runs
        message.free.seconds = price.free.seconds
        message.free.tokens = price.free.tokens
        message.free.period = price.free.period


def price_from_pb(message: market_pb2.Price, where: str = "price") -> Price:
    """The price a message carries, checked as strictly as the catalog checks it."""
    raw: dict[str, Any] = {"currency": message.currency}
    if message.per_run:
        raw["per_run"] = message.per_run
    if message.per_second:
        raw["per_second"] = message.per_second
    if message.tokens:
        models = [r.model for r in message.tokens]
        if len(set(models)) != len(models):
            raise InvalidArgument.field(f"{where}.tokens", "each model once")
        raw["tokens"] = {
            r.model: {"input": r.per_1k_input or "0", "output": r.per_1k_output or "0"}
            for r in message.tokens
        }
    if message.HasField("free"):
        free = message.free
        raw["free"] = {
            "runs": free.runs,
            "seconds": free.seconds,
            "tokens": free.tokens,
            "period": free.period or "month",
        }
    return price_from_mapping(raw, where)


def price_problems(message: market_pb2.Price, where: str) -> list[tuple[str, str]]:
    """(field, description) of what is wrong with an announced price; empty: nothing."""
    try:
        price_from_pb(message, where)
    except InvalidArgument as e:
        return [(v.field, v.description) for v in e.violations] or [(where, e.message)]
    return []


def price_text(message: market_pb2.Price) -> str:
    """One line for tables: `EUR 0.05/run + 0.001/s + gpt-4o 0.0025/0.01 per 1k tok`."""
    if not message.currency:
        return "free"
    parts = []
    if message.per_run:
        parts.append(f"{message.per_run}/run")
    if message.per_second:
        parts.append(f"{message.per_second}/s")
    for rate in message.tokens:
        parts.append(f"{rate.model} {rate.per_1k_input}/{rate.per_1k_output} per 1k tok")
    text = f"{message.currency} " + " + ".join(parts)
    if message.HasField("free"):
        free = message.free
        allowance = [
            f"{n} {unit}"
            for n, unit in (
                (free.runs, "runs"),
                (int(free.seconds), "s"),
                (free.tokens, "tok"),
            )
            if n
        ]
        if allowance:
            text += f" ({', '.join(allowance)} free/{free.period or 'month'})"
    return text


# -- applying a price to metered usage --------------------------------------------------------


class ModelTokens(Protocol):
    @property
    def model(self) -> str: ...

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...


class MeteredRun(Protocol):
    """What `charge` reads of one run's usage: the node's stored record
    (`kodosumid.event_store.UsageTotals`), a `kodosumi.v1.UsageTotals` or a `Usage` message."""

    @property
    def wall_seconds(self) -> float: ...

    @property
    def models(self) -> Iterable[ModelTokens]: ...


_CENT_OF_A_NANO = Decimal(10) ** -MAX_FRACTION_DIGITS
_EXACT = Context(prec=80)
_PER_1K = Decimal(1000)


def token_rate(price: Price, model: str) -> TokenRate | None:
    """The rate of `model`: its own, else the `*` rate, else none (its tokens are free)."""
    fallback = None
    for rate in price.tokens:
        if rate.model == model:
            return rate
        if rate.model == ANY_MODEL:
            fallback = rate
    return fallback


def charge(price: Price, usage: MeteredRun) -> Decimal:
    """What one run costs at `price`: `per_run` once, `per_second` times its wall seconds (all
    attempts), each model's tokens at its rate per 1000; rounded half up to 9 places. Free
    allowances are the caller's to apply: they need the user's earlier runs in the period
    (the node's usage summaries by user and flow give them)."""
    with localcontext(_EXACT):  # 18 + 9 digits times 20 digits of tokens: never rounded
        return _charge(price, usage)


def _charge(price: Price, usage: MeteredRun) -> Decimal:
    total = price.per_run
    seconds = Decimal(repr(float(usage.wall_seconds)))
    if not seconds.is_finite() or seconds < 0:
        raise InvalidArgument.field("usage.wall_seconds", "a finite number of seconds >= 0")
    total += price.per_second * seconds
    for used in usage.models:
        rate = token_rate(price, used.model)
        if rate is None:
            continue
        total += rate.per_1k_input * Decimal(used.input_tokens) / _PER_1K
        total += rate.per_1k_output * Decimal(used.output_tokens) / _PER_1K
    return total.quantize(_CENT_OF_A_NANO, rounding=ROUND_HALF_UP)
