"""The market view's filters over flow offers (docs/market.md, "The market view"): text,
a price ceiling, a badge level and a measured p95, checked like any request (a bad filter is
INVALID_ARGUMENT naming it) and applied while the offers are paged (registryd/paging.py), so
pages stay bounded however few offers match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from kodosumi.errors import InvalidArgument
from kodosumi.price_estimate import fits
from kodosumi.pricing import CURRENCY, amount
from kodosumi.v1 import flow_pb2
from registryd.config import BadgeLevel
from registryd.model import FlowOffer
from registryd.service_levels import ServiceBook, level_rank
from registryd.service_stats import MAX_SECONDS

MAX_TEXT = 256


@dataclass(frozen=True, slots=True)
class OfferFilter:
    text: str = ""
    max_price: Decimal | None = None
    currency: str = ""
    min_badge_level: str = ""
    max_p95: float | None = None

    @property
    def reads_spec(self) -> bool:
        return bool(self.text) or self.max_price is not None

    @property
    def empty(self) -> bool:
        return not (self.reads_spec or self.min_badge_level or self.max_p95 is not None)


def offer_filter(
    *,
    text: str,
    max_price: str,
    currency: str,
    min_badge_level: str,
    max_p95: float | None,
    levels: dict[str, BadgeLevel],
) -> OfferFilter:
    """The filters of a request, checked; InvalidArgument names the bad one."""
    if len(text) > MAX_TEXT:
        raise InvalidArgument.field("text", f"at most {MAX_TEXT} characters")
    ceiling = None
    if max_price:
        ceiling = amount(max_price, "max_price")
        if not currency:
            raise InvalidArgument.field("currency", "required with max_price")
    if currency and not CURRENCY.match(currency):
        raise InvalidArgument.field("currency", "2 to 10 upper-case letters or digits")
    if currency and not max_price:
        raise InvalidArgument.field("max_price", "required with currency")
    if min_badge_level and min_badge_level not in levels:
        known = ", ".join(levels) or "none are configured"
        raise InvalidArgument.field(
            "min_badge_level", f"{min_badge_level!r} is not a level of this registry ({known})"
        )
    if max_p95 is not None and (not math.isfinite(max_p95) or not 0 <= max_p95 <= MAX_SECONDS):
        raise InvalidArgument.field("max_p95", f"from 0 s to {MAX_SECONDS:g} s")
    return OfferFilter(text.casefold(), ceiling, currency, min_badge_level, max_p95)


class OfferSieve:
    """Keeps the offers that pass a filter, by what the registry knows of them."""

    def __init__(
        self, offer_filter: OfferFilter, levels: dict[str, BadgeLevel], book: ServiceBook
    ) -> None:
        self.filter = offer_filter
        self.levels = levels
        self.book = book

    def keep(self, offer: FlowOffer) -> bool:
        f = self.filter
        key = (offer.node.node_id, offer.flow.name)
        measure = self.book.measures.get(key)
        if f.min_badge_level:
            held = self.book.level_of(*key)[0]
            if not held or level_rank(self.levels, held) > level_rank(
                self.levels, f.min_badge_level
            ):
                return False
        if f.max_p95 is not None and (
            measure is None
            or measure.successes + measure.failures == 0
            or measure.p95_seconds > f.max_p95
        ):
            return False
        if f.reads_spec:
            spec = flow_pb2.Flow.FromString(offer.flow.spec)
            if f.text and not _mentions(spec, f.text):
                return False
            if f.max_price is not None:
                p50 = measure.p50_seconds if measure and measure.successes else None
                if not fits(spec.price, p50, f.max_price, f.currency):
                    return False
        return True


def _mentions(spec: flow_pb2.Flow, text: str) -> bool:
    return any(text in part.casefold() for part in (spec.name, spec.description, *spec.tags))
