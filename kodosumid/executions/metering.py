"""Metered usage of executions (docs/market.md, Metering): the record stored with each
execution, and the reads of it.

Writes: every attempt ends with the engine's `Usage` event; the drainer finds it in the
batch it stores (`usage_in`) and stores it as the attempt's usage in the same write, so it is
durable exactly when the event is (and a relayed execution's usage comes in with the peer's
events). An attempt the engine sent none for — its executor died, the node ended it (cancelled
before it started, stopped as too large, shut down), the peer running it was lost — gets one
written by the node (`node_usage`: counted from the attempt's stored events, CPU unknown,
`source` "node", a note saying why).

Reads: `Metering.usage_of` gives one execution's record (its attempts, their sum, and its
children's usage rolled up, so the parent's own figures stay visible); `Metering.summarize`
the grouped summary `ListUsage` answers. A user sees only their own usage; operators and
admins see everybody's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, PermissionDenied
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.usage_counter import UsageCounter, inputs_size
from kodosumi.v1 import event_pb2, market_pb2
from kodosumid.event_store import (
    GROUP_KEYS,
    AttemptUsage,
    EventStore,
    ExecutionRecord,
    ModelUse,
    UsagePage,
    UsageQuery,
    UsageTotals,
)
from kodosumid.event_store.usage_model import NODE, merge_models
from kodosumid.executions.access import Access

log = logging.getLogger(__name__)

# The `usage` field of `Event` (28, length-delimited) as it starts on the wire: a cheap test
# that spares parsing the events of a batch that hold none (a false hit is only parsed).
_USAGE_TAG = b"\xe2\x01"
MAX_SUMMARY_PAGE = 500
DEFAULT_SUMMARY_PAGE = 50
# A summary page ends early, with a token, before its rows pass this (many models per row).
SUMMARY_PAGE_BYTES = 1024 * 1024
MAX_FILTER_CHARS = 1024
# What a stored Usage may hold (engines and peers send it; the store keeps 64-bit integers).
MAX_ATTEMPTS = 100  # the most `retry.attempts` a flow may have (kodosumid/config/flows.py)
MAX_MODELS = 64
MAX_MODEL_CHARS = 200
MAX_COUNT = 2**63 - 1
MAX_SECONDS = 1e12
# Stored events the node reads at most to count an attempt that ended without its engine's
# usage (a run that died after writing a GiB is counted from its first part): a shared
# executor that dies ends all its executions at once, each counted on the event loop.
MAX_COUNT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One execution's usage: its own attempts and their sum, and its children's (ctx.call_flow
    children and the runs they forwarded, at any depth) summed apart."""

    execution_id: str
    attempts: tuple[AttemptUsage, ...]
    own: UsageTotals
    children: UsageTotals

    @property
    def total(self) -> UsageTotals:
        return self.own.plus(self.children)


def _seconds(value: float) -> float:
    return value if math.isfinite(value) and 0 <= value <= MAX_SECONDS else 0.0


def _count(value: int) -> int:
    return min(value, MAX_COUNT)


def attempt_usage(
    usage: market_pb2.Usage, attempt: int, *, node: str, groups: Sequence[str], at_ns: int
) -> AttemptUsage:
    """A `Usage` message as stored. Its figures come from an engine or a peer and are held to
    what the store can keep: times finite and >= 0, counts below 2^63, models merged by name
    (at most `MAX_MODELS`, names cut to `MAX_MODEL_CHARS`)."""
    models = merge_models(
        ModelUse(m.model[:MAX_MODEL_CHARS], m.calls, m.input_tokens, m.output_tokens)
        for m in usage.models[:MAX_MODELS]
    )
    return AttemptUsage(
        attempt=usage.attempt or attempt,
        wall_seconds=_seconds(usage.wall_seconds),
        cpu_seconds=_seconds(usage.cpu_seconds),
        llm_calls=_count(usage.llm_calls),
        tool_calls=_count(usage.tool_calls),
        input_bytes=_count(usage.input_bytes),
        output_bytes=_count(usage.output_bytes),
        artifact_bytes=_count(usage.artifact_bytes),
        models=tuple(
            ModelUse(m.model, _count(m.calls), _count(m.input_tokens), _count(m.output_tokens))
            for m in models
        ),
        at_ns=at_ns,
        node=node,
        groups=tuple(groups),
    )


def usage_in(
    datas: Sequence[bytes], *, node: str, groups: Sequence[str], at_ns: int
) -> list[AttemptUsage]:
    """The `Usage` events among serialized events, as attempts' usage."""
    found = []
    for data in datas:
        if _USAGE_TAG not in data:
            continue
        event = event_pb2.Event.FromString(data)
        if event.WhichOneof("kind") != "usage":
            continue
        attempt = event.usage.attempt or event.attempt
        # One record per attempt an execution can have (a relaying node's peer says what it
        # likes): the event's own attempt, within the retry limit.
        if attempt != event.attempt or not 1 <= attempt <= MAX_ATTEMPTS:
            log.warning(
                "usage of attempt %d in an event of attempt %d ignored", attempt, event.attempt
            )
            continue
        found.append(attempt_usage(event.usage, attempt, node=node, groups=groups, at_ns=at_ns))
    return found


async def node_usage(
    store: EventStore,
    record: ExecutionRecord,
    attempt: int,
    reason: str,
    *,
    node: str,
    groups: Sequence[str],
    now_ns: int,
) -> AttemptUsage:
    """The record of an attempt its engine sent no usage for, counted by the node from the
    attempt's stored events as the engine counts them (`kodosumi.usage_counter`): LLM calls
    and tokens, tool calls, bytes, wall time from its STARTING to its last stored event. CPU
    time is not known."""
    counter = UsageCounter()
    started_ns, last_ns, after, read = 0, 0, 0, 0
    while read < MAX_COUNT_BYTES and (rows := await store.read_events(record.execution_id, after)):
        for _, data in rows:
            event = event_pb2.Event.FromString(data)
            if event.attempt != attempt:
                continue
            starting = event.status_changed.status == event_pb2.EXECUTION_STATUS_STARTING
            if starting and not started_ns:
                started_ns = event.time_unix_nano
            # The attempt's events are timed by its executor's clock: its wall time is taken
            # on that clock alone (the node's may differ on another host).
            last_ns = max(last_ns, event.time_unix_nano)
            counter.fold(event)
        read += sum(len(data) for _, data in rows)
        after = rows[-1][0]
    usage = market_pb2.Usage(attempt=attempt)
    counter.fill(usage)
    if started_ns:
        usage.wall_seconds = max(0.0, (last_ns - started_ns) / 1e9)
        usage.input_bytes = inputs_size(record.inputs)
    how = "counted by the node from its stored events, CPU not measured"
    if read >= MAX_COUNT_BYTES:
        how += f" (from the first {MAX_COUNT_BYTES >> 20} MiB of them)"
    elif not started_ns:
        how = "the attempt never started"
    found = attempt_usage(usage, attempt, node=node, groups=groups, at_ns=now_ns)
    return replace(found, source=NODE, note=f"no usage from the engine ({reason[:300]}): {how}")


def _owner(principal: Principal, user: str) -> str | None:
    """A `user` filter: a SPIFFE id, or a user name in the caller's trust domain."""
    if not user:
        return None
    if user.startswith("spiffe://"):
        return user
    if principal.identity is None:
        raise InvalidArgument.field("user", "a SPIFFE id (spiffe://<domain>/user/<name>)")
    try:
        return str(SpiffeId.user(principal.identity.trust_domain, user))
    except InvalidSpiffeId as e:
        raise InvalidArgument.field("user", f"a user name or SPIFFE id: {e}") from None


def _text(name: str, value: str) -> str:
    if len(value) > MAX_FILTER_CHARS:
        raise InvalidArgument.field(name, f"at most {MAX_FILTER_CHARS} characters")
    return value


class Metering:
    def __init__(self, store: EventStore, access: Access) -> None:
        self.store = store
        self.access = access

    async def usage_of(self, principal: Principal, execution_id: str) -> UsageRecord:
        """An execution's usage (NotFound unless the caller may see the execution). The
        domain function a receipt prices a finished run with (`kodosumi.pricing.amount`)."""
        await self.access.visible(principal, execution_id)
        return await self.record(execution_id)

    async def record(self, execution_id: str) -> UsageRecord:
        """`usage_of` for the node itself (no caller to check)."""
        attempts = await self.store.usage_of(execution_id)
        return UsageRecord(
            execution_id,
            tuple(attempts),
            UsageTotals.of(attempts),
            await self.store.children_usage(execution_id),
        )

    async def summarize(
        self,
        principal: Principal,
        *,
        user: str = "",
        group: str = "",
        flow: str = "",
        node: str = "",
        since_ns: int = 0,
        until_ns: int = 0,
        group_by: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> UsagePage:
        """Usage summed per `group_by` key. A user asking for another user's usage is refused;
        without a `user` filter they get their own."""
        if group_by not in GROUP_KEYS:
            raise InvalidArgument.field(
                "group_by", f"one of {', '.join(k or '(none)' for k in GROUP_KEYS)}"
            )
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        if since_ns < 0 or until_ns < 0:
            raise InvalidArgument.field("since" if since_ns < 0 else "until", "a time >= 0")
        if since_ns and until_ns and until_ns <= since_ns:
            raise InvalidArgument.field("until", "after since")
        owner: str | None = _owner(principal, _text("user", user))
        if not principal.privileged:
            if owner is not None and owner != principal.id:
                raise PermissionDenied(
                    f"{principal.id} may see only their own usage, not {owner}'s",
                    reason="NOT_YOUR_USAGE",
                )
            owner = principal.id
        return await self.store.summarize_usage(
            UsageQuery(
                owner=owner,
                group=_text("group", group),
                flow=_text("flow", flow),
                node=_text("node", node),
                since_ns=since_ns,
                until_ns=until_ns,
                group_by=group_by,
                page_size=min(page_size or DEFAULT_SUMMARY_PAGE, MAX_SUMMARY_PAGE),
                page_token=page_token,
                max_bytes=SUMMARY_PAGE_BYTES,
            )
        )
