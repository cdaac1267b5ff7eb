"""The catalog as configured: `[[flows]]` entries checked field by field into `FlowEntry`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kodosumi.errors import InvalidArgument
from kodosumi.pricing import Price, price_from_mapping
from kodosumid.executors.placement import parse_placement
from kodosumid.executors.port import ANYWHERE, Placement

ISOLATIONS = ("shared", "process")


@dataclass(frozen=True, slots=True)
class FlowEntry:
    name: str
    entrypoint: str
    description: str = ""
    tags: tuple[str, ...] = ()
    version: str = ""
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    timeout_seconds: float = 0.0
    # "shared": many executions per executor process; "process": one process of its own.
    isolation: str = "shared"
    # Attempts in all (1: no retry), and the pause before each new attempt.
    retry_attempts: int = 1
    retry_backoff_seconds: float = 1.0
    # Auth: user groups that may launch the flow (empty: everyone; operators and admins always).
    groups: tuple[str, ...] = ()
    # Largest inputs (serialized bytes) a launch may carry; 0: the caller's quota decides.
    max_input_bytes: int = 0
    # Where its executors run: Ray resources, node labels, one Ray node (empty: anywhere).
    placement: Placement = ANYWHERE
    # The catalog keys written out for it; the rest may be filled from the flow itself
    # (its signature, docstring or YAML spec: kodosumid/catalog_check.py).
    given: frozenset[str] = frozenset()
    # Why it cannot run, found by the catalog check (empty: it can).
    unavailable: str = ""
    # What an execution costs (docs/market.md); None: free.
    price: Price | None = None


def _flow(raw: dict[str, Any], index: int) -> FlowEntry:
    where = f"flows[{index}]"
    for key in ("name", "entrypoint"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InvalidArgument.field(f"{where}.{key}", "required string")
    isolation = raw.get("isolation", "shared")
    if isolation not in ISOLATIONS:
        raise InvalidArgument.field(f"{where}.isolation", f"one of {', '.join(ISOLATIONS)}")
    schema = raw.get("input_schema", {"type": "object"})
    if not isinstance(schema, dict):
        raise InvalidArgument.field(f"{where}.input_schema", "a JSON Schema object")
    retry = raw.get("retry", {})
    if not isinstance(retry, dict):
        raise InvalidArgument.field(f"{where}.retry", "a table: { attempts, backoff_seconds }")
    attempts = retry.get("attempts", 1)
    if not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise InvalidArgument.field(f"{where}.retry.attempts", "a whole number from 1 to 100")
    backoff = retry.get("backoff_seconds", 1.0)
    if not isinstance(backoff, int | float) or not 0 <= backoff <= 3600:
        raise InvalidArgument.field(f"{where}.retry.backoff_seconds", "seconds from 0 to 3600")
    max_input = raw.get("max_input_bytes", 0)
    if isinstance(max_input, bool) or not isinstance(max_input, int) or max_input < 0:
        raise InvalidArgument.field(f"{where}.max_input_bytes", "a whole number of bytes >= 0")
    price = price_from_mapping(raw["price"], f"{where}.price") if "price" in raw else None
    return FlowEntry(
        name=raw["name"],
        entrypoint=raw["entrypoint"],
        description=str(raw.get("description", "")),
        tags=tuple(raw.get("tags", ())),
        version=str(raw.get("version", "")),
        input_schema=schema,
        timeout_seconds=float(raw.get("timeout_seconds", 0.0)),
        isolation=isolation,
        retry_attempts=attempts,
        retry_backoff_seconds=float(backoff),
        groups=tuple(str(g) for g in raw.get("groups", ())),
        max_input_bytes=max_input,
        placement=parse_placement(
            raw.get("resources"), raw.get("labels"), raw.get("node", ""), where=where
        ),
        given=frozenset(raw),
        price=price,
    )


def flows_from(raw_flows: list[dict[str, Any]]) -> tuple[FlowEntry, ...]:
    """The entries, or one error naming every bad key of every entry."""
    parsed: list[FlowEntry] = []
    problems: list[InvalidArgument] = []
    for i, raw in enumerate(raw_flows):
        try:
            parsed.append(_flow(raw, i))
        except InvalidArgument as e:
            problems.append(e)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InvalidArgument(
            "; ".join(p.message for p in problems),
            violations=[v for p in problems for v in p.violations],
        )
    flows = tuple(parsed)
    names = [f.name for f in flows]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise InvalidArgument.field(
            "flows", f"duplicate flow names: {', '.join(sorted(duplicates))}"
        )
    return flows
