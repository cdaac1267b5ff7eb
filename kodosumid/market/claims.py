"""The claims of a quote and a receipt, as signed (JSON) and as the domain uses them.

Amounts and run time travel as decimal strings (exact); a price as the catalog's own table
(`kodosumi.pricing.price_from_mapping` reads it back, as strictly as the catalog).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kodosumi.charges import FreeUsed, Limits, amount_text
from kodosumi.contracts import canonical_json
from kodosumi.pricing import Price, price_from_mapping


def inputs_sha256(inputs: dict[str, Any]) -> str:
    """The hash a quote binds its inputs by: sha256 of their canonical JSON."""
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def price_to_mapping(price: Price) -> dict[str, Any]:
    """The price as the catalog writes it (decimal strings)."""
    raw: dict[str, Any] = {"currency": price.currency}
    raw["per_run"] = amount_text(price.per_run)
    raw["per_second"] = amount_text(price.per_second)
    if price.tokens:
        raw["tokens"] = {
            r.model: {"input": amount_text(r.per_1k_input), "output": amount_text(r.per_1k_output)}
            for r in price.tokens
        }
    if price.free is not None:
        raw["free"] = {
            "runs": price.free.runs,
            "seconds": price.free.seconds,
            "tokens": price.free.tokens,
            "period": price.free.period,
        }
    return raw


@dataclass(frozen=True, slots=True)
class Stats:
    runs: int = 0
    success_rate: float = 0.0
    p50_seconds: float = 0.0
    p95_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class QuoteTerms:
    """A quote as the node redeems and enforces it (read from its signed claims)."""

    quote_id: str
    node_id: str
    flow: str
    flow_version: str
    inputs_sha256: str
    price: Price | None
    limits: Limits
    ceiling: Decimal
    stats: Stats
    requester: str
    issued_at: float
    expires_at: float

    def claims(self) -> dict[str, Any]:
        return {
            "jti": self.quote_id,
            "node": self.node_id,
            "sub": self.requester,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "inputs_sha256": self.inputs_sha256,
            "price": price_to_mapping(self.price) if self.price is not None else None,
            "limits": {
                "max_seconds": amount_text(self.limits.max_seconds),
                "max_tokens": self.limits.max_tokens,
            },
            "ceiling": amount_text(self.ceiling),
            "currency": self.price.currency if self.price is not None else "",
            "stats": {
                "runs": self.stats.runs,
                "success_rate": self.stats.success_rate,
                "p50_seconds": self.stats.p50_seconds,
                "p95_seconds": self.stats.p95_seconds,
            },
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> QuoteTerms:
        """The terms of claims this node signed (read back from its own store)."""
        limits, stats = claims["limits"], claims["stats"]
        raw_price = claims.get("price")
        return cls(
            quote_id=claims["jti"],
            node_id=claims["node"],
            flow=claims["flow"],
            flow_version=claims["flow_version"],
            inputs_sha256=claims["inputs_sha256"],
            price=price_from_mapping(raw_price, "price") if raw_price else None,
            limits=Limits(Decimal(limits["max_seconds"]), int(limits["max_tokens"])),
            ceiling=Decimal(claims["ceiling"]),
            stats=Stats(**stats),
            requester=claims["sub"],
            issued_at=float(claims["iat"]),
            expires_at=float(claims["exp"]),
        )


def free_to_mapping(free: FreeUsed) -> dict[str, Any]:
    return {"runs": free.runs, "seconds": amount_text(free.seconds), "tokens": free.tokens}
