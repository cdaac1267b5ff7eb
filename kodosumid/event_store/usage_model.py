"""What the event store keeps of metered usage (docs/market.md, Metering): one row per attempt.

An `AttemptUsage` is what one attempt of an execution used: the engine's `Usage` event as it
was stored (`source` "engine"), or, for an attempt the engine sent none for (its executor
died, the node ended it, the peer running it was lost), what the node recorded itself
(`source` "node", with a `note` saying why). The store keeps them beside the execution, with
the execution's owner, flow and parent copied in, so that usage outlives the execution's
events (retention deletes those; the usage is the bill of them).

`UsageTotals` sums attempts; `UsageQuery` and `UsagePage` are the summary a listing asks for
(grouped by one key, keyset-paged by that key).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from kodosumi.errors import InvalidArgument

ENGINE = "engine"
NODE = "node"

# What a summary may be grouped by; "" is one row of everything asked for.
GROUP_KEYS = ("", "user", "group", "flow", "node", "day", "month", "execution")

# The fixed part of one summary row on the wire (key aside), for byte-bounded pages.
ROW_OVERHEAD_BYTES = 128
MODEL_OVERHEAD_BYTES = 32


@dataclass(frozen=True, slots=True)
class ModelUse:
    model: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class AttemptUsage:
    attempt: int
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    llm_calls: int = 0
    tool_calls: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    artifact_bytes: int = 0
    models: tuple[ModelUse, ...] = ()
    # When the node stored it (its clock), the time a period filter and `day`/`month` use.
    at_ns: int = 0
    source: str = ENGINE
    note: str = ""
    # The node the attempt ran on (a peer's id for a relayed execution).
    node: str = ""
    # The owner's groups at launch (the auth provider's), for `group` summaries.
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Attempts summed: `runs` distinct executions, `attempts` rows; per model by name."""

    runs: int = 0
    attempts: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    llm_calls: int = 0
    tool_calls: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    artifact_bytes: int = 0
    models: tuple[ModelUse, ...] = ()

    @property
    def input_tokens(self) -> int:
        return sum(m.input_tokens for m in self.models)

    @property
    def output_tokens(self) -> int:
        return sum(m.output_tokens for m in self.models)

    def plus(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            runs=self.runs + other.runs,
            attempts=self.attempts + other.attempts,
            wall_seconds=self.wall_seconds + other.wall_seconds,
            cpu_seconds=self.cpu_seconds + other.cpu_seconds,
            llm_calls=self.llm_calls + other.llm_calls,
            tool_calls=self.tool_calls + other.tool_calls,
            input_bytes=self.input_bytes + other.input_bytes,
            output_bytes=self.output_bytes + other.output_bytes,
            artifact_bytes=self.artifact_bytes + other.artifact_bytes,
            models=merge_models((*self.models, *other.models)),
        )

    @classmethod
    def of(cls, attempts: Iterable[AttemptUsage], runs: int | None = None) -> UsageTotals:
        """The sum of `attempts` (of one execution unless `runs` says how many)."""
        rows = list(attempts)
        return cls(
            runs=(1 if rows else 0) if runs is None else runs,
            attempts=len(rows),
            wall_seconds=sum(a.wall_seconds for a in rows),
            cpu_seconds=sum(a.cpu_seconds for a in rows),
            llm_calls=sum(a.llm_calls for a in rows),
            tool_calls=sum(a.tool_calls for a in rows),
            input_bytes=sum(a.input_bytes for a in rows),
            output_bytes=sum(a.output_bytes for a in rows),
            artifact_bytes=sum(a.artifact_bytes for a in rows),
            models=merge_models(m for a in rows for m in a.models),
        )


def merge_models(models: Iterable[ModelUse]) -> tuple[ModelUse, ...]:
    """Per model name, summed, sorted by name."""
    by_name: dict[str, ModelUse] = {}
    for m in models:
        seen = by_name.get(m.model)
        by_name[m.model] = (
            m
            if seen is None
            else replace(
                seen,
                calls=seen.calls + m.calls,
                input_tokens=seen.input_tokens + m.input_tokens,
                output_tokens=seen.output_tokens + m.output_tokens,
            )
        )
    return tuple(by_name[name] for name in sorted(by_name))


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Which attempts to sum and how to group them. `owner` None: everyone's. Times are the
    attempts' `at_ns`, in [since_ns, until_ns) (0: open)."""

    owner: str | None = None
    group: str = ""
    flow: str = ""
    node: str = ""
    since_ns: int = 0
    until_ns: int = 0
    group_by: str = ""
    page_size: int = 50
    page_token: str = ""
    max_bytes: int = 0


@dataclass(frozen=True, slots=True)
class UsageRow:
    key: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class UsagePage:
    rows: list[UsageRow] = field(default_factory=list)
    next_token: str = ""


def row_size(row: UsageRow) -> int:
    return (
        ROW_OVERHEAD_BYTES
        + len(row.key.encode())
        + sum(MODEL_OVERHEAD_BYTES + len(m.model.encode()) for m in row.totals.models)
    )


def encode_key_token(key: str) -> str:
    return base64.urlsafe_b64encode(b"u:" + key.encode()).decode()


def decode_key_token(token: str) -> str:
    """The key of the last row of the previous page."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if not raw.startswith(b"u:"):
            raise ValueError(token)
        return raw[2:].decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument.field("page_token", "not a token this node issued") from None
