"""A read-only asyncio client of the registry (`RegistryService`): the nodes it knows, the
flows they offer, and its change feed.

    async with RegistryClient() as registry:   # address and credentials resolved as the CLI does
        snapshot = await registry.list_nodes(states=["online"])
        async for item in registry.watch_registry(snapshot.revision):
            ...   # a RegistryChange, or a RegistrySnapshot after the registry lost our place

The registry's address is the first of: an explicit one, `$KODOSUMI_REGISTRY`, the registry a
logged-in identity enrolled with, the `registry.json` a local registryd keeps in
`<state>/registry/`, `127.0.0.1:7460`; credentials as for a node (`kodoclient.auth`).

`watch_registry` follows the registry as `docs/registry.md` prescribes for readers: it
resumes from the last revision it yielded when the stream breaks (a registry restart, the
network), and lists again when the registry no longer keeps that revision
(`REVISION_COMPACTED`) or — once a stream was established — never had it
(`REVISION_IN_FUTURE`: a wiped registry).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar

import grpc

from kodoclient._spans import fail, stream_span, traced_unary
from kodoclient.auth import RegistryTarget, resolve_registry
from kodoclient.errors import KodoclientError
from kodoclient.resume import (
    ReconnectHook,
    ReconnectPolicy,
    ResumedHook,
    Resumer,
    StreamBroken,
    resumable_rpc_error,
)
from kodosumi.paths import default_state_dir
from kodosumi.rpc.channel import open_channel
from kodosumi.v1 import registry_pb2 as rpb
from kodosumi.v1 import registry_pb2_grpc

log = logging.getLogger(__name__)

_Resp = TypeVar("_Resp")

# At most this many nodes per ListNodes page (the registry's own limit).
PAGE_SIZE = 1000
# Reasons of a failed watch that mean "your revision is gone: list again".
COMPACTED = "REVISION_COMPACTED"
IN_FUTURE = "REVISION_IN_FUTURE"
_STATE_PREFIX = "REGISTERED_NODE_STATE_"
_KIND_PREFIX = "REGISTRY_CHANGE_KIND_"

NodeState: TypeAlias = rpb.RegisteredNodeState.ValueType
StateFilter = Iterable[NodeState | str]


def parse_state(text: str) -> NodeState:
    """`online`, `ONLINE` or `REGISTERED_NODE_STATE_ONLINE` -> the enum value."""
    name = text.strip().upper()
    if not name.startswith(_STATE_PREFIX):
        name = _STATE_PREFIX + name
    try:
        return rpb.RegisteredNodeState.Value(name)
    except ValueError:
        raise ValueError(
            f"unknown node state {text!r} (use {', '.join(state_names()).lower()})"
        ) from None


def state_names() -> list[str]:
    """The node states without prefix, UNSPECIFIED left out: ONLINE, OFFLINE, LEFT."""
    return [
        state_name(v)
        for v in rpb.RegisteredNodeState.values()
        if v != rpb.REGISTERED_NODE_STATE_UNSPECIFIED
    ]


def state_name(state: int) -> str:
    """`ONLINE` for REGISTERED_NODE_STATE_ONLINE; the number for an unknown value."""
    try:
        return rpb.RegisteredNodeState.Name(state).removeprefix(_STATE_PREFIX)  # type: ignore[arg-type]
    except ValueError:
        return str(state)


def change_kind_name(kind: int) -> str:
    """`NODE_ONLINE` for REGISTRY_CHANGE_KIND_NODE_ONLINE; the number for an unknown value."""
    try:
        return rpb.RegistryChangeKind.Name(kind).removeprefix(_KIND_PREFIX)  # type: ignore[arg-type]
    except ValueError:
        return str(kind)


def _states(states: StateFilter) -> list[NodeState]:
    return [parse_state(s) if isinstance(s, str) else s for s in states]


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Every node the registry knows (with its flows) and the revision the list reflects:
    what `list_nodes` answers, and what `watch_registry` yields when it (re)lists."""

    nodes: tuple[rpb.RegisteredNode, ...]
    revision: int


RegistryItem = rpb.RegistryChange | RegistrySnapshot


class RegistryClient:
    """Reads of one registry; every unary call under a deadline, failures as
    `KodoclientError`. Use it as an async context manager, or call `close()`; the channel
    opens on the first call, inside the running loop."""

    def __init__(
        self,
        target: RegistryTarget | None = None,
        *,
        reconnect: ReconnectPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._target = (
            target
            if target is not None
            else resolve_registry(address=None, state_dir=default_state_dir())
        )
        self._reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        # Reconnect jitter draws from here; tests pass a seeded generator.
        self._rng = rng if rng is not None else random.Random()
        self._channel: grpc.aio.Channel | None = None
        self._stub: registry_pb2_grpc.RegistryServiceAsyncStub | None = None

    @property
    def address(self) -> str:
        return self._target.address

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            await channel.close()

    def _registry(self) -> registry_pb2_grpc.RegistryServiceAsyncStub:
        if self._stub is None:
            self._channel = open_channel(
                self._target.address, self._target.tls, expect=self._target.expect
            )
            self._stub = registry_pb2_grpc.RegistryServiceStub(self._channel)  # type: ignore[assignment]
        assert self._stub is not None
        return self._stub

    async def _unary(
        self,
        method: str,
        call: Callable[..., Awaitable[_Resp]],
        request: Any,
        call_timeout: float | None,
    ) -> _Resp:
        timeout = call_timeout or self._target.call_timeout
        return await traced_unary(
            method,
            self._target.address,
            call,
            request,
            timeout,
            secure=self._target.tls is not None,
        )

    # -- reads -------------------------------------------------------------------------------

    async def get_node(
        self, node_id: str, *, call_timeout: float | None = None
    ) -> rpb.RegisteredNode:
        """One node with its flows (NOT_FOUND when the registry never knew it)."""
        response = await self._unary(
            "GetNode",
            self._registry().GetNode,
            rpb.GetNodeRequest(node_id=node_id),
            call_timeout,
        )
        return response.node

    async def list_nodes(
        self,
        *,
        states: StateFilter = (),
        flow_name: str = "",
        flow_tag: str = "",
        call_timeout: float | None = None,
    ) -> RegistrySnapshot:
        """Every matching node (all pages), ordered by node id, and the registry revision.

        `states` takes enum values or names (`online`); a node matches the flow filters when
        one of its flows has that name and that tag. The revision is the oldest a page was
        read at: watch from it to follow later changes.
        """
        wanted = _states(states)
        nodes: list[rpb.RegisteredNode] = []
        token, revision = "", 0
        while True:
            request = rpb.ListNodesRequest(
                states=wanted,
                flow_name=flow_name,
                flow_tag=flow_tag,
                page_size=PAGE_SIZE,
                page_token=token,
            )
            response = await self._unary(
                "ListNodes", self._registry().ListNodes, request, call_timeout
            )
            nodes += response.nodes
            # Pages are read at different revisions: keep the oldest, so that watching from
            # it misses nothing (a change seen twice is harmless, one missed is not).
            revision = min(revision, response.revision) if revision else response.revision
            token = response.next_page_token
            if not token:
                return RegistrySnapshot(tuple(nodes), revision)

    async def list_flow_offers(
        self,
        *,
        flow_name: str = "",
        tag: str = "",
        node_states: StateFilter = (),
        call_timeout: float | None = None,
        market: rpb.ListFlowOffersRequest | None = None,
    ) -> list[rpb.FlowOffer]:
        """One entry per (node, flow), ordered by flow name then node id, each with the
        node's state, endpoints and load (every page: the registry bounds each in bytes).
        `market` carries the market view's filters (text, price ceiling, badge level, p95)."""
        offers: list[rpb.FlowOffer] = []
        token = ""
        while True:
            request = rpb.ListFlowOffersRequest(
                node_states=_states(node_states), tag=tag, flow_name=flow_name, page_token=token
            )
            if market is not None:
                request.MergeFrom(market)
            response = await self._unary(
                "ListFlowOffers", self._registry().ListFlowOffers, request, call_timeout
            )
            offers += response.offers
            token = response.next_page_token
            if not token:
                return offers

    # -- the change feed -----------------------------------------------------------------------

    async def watch_registry(
        self,
        after_revision: int | None = None,
        *,
        follow: bool = True,
        on_reconnect: ReconnectHook | None = None,
        on_resumed: ResumedHook | None = None,
    ) -> AsyncGenerator[RegistryItem, None]:
        """The registry's changes after `after_revision`, each once and in revision order.

        `after_revision=None` starts with a `RegistrySnapshot` (`list_nodes`) and follows
        the changes after it; `0` replays every change the registry still keeps. When the
        stream breaks the watch resumes after the last revision it yielded, with the
        policy's backoff, forever unless the policy bounds it (`max_attempts` in a row,
        `give_up_after` seconds: then UNAVAILABLE). `on_reconnect(attempt, delay, cause)`
        is called before each wait, `on_resumed(attempts)` once the registry answers again.
        When the registry no longer keeps that revision it yields a fresh
        `RegistrySnapshot` and goes on from there. A revision ahead of the registry is the
        caller's error (INVALID_ARGUMENT, `REVISION_IN_FUTURE`) on the first stream, and
        means a wiped registry later on: then it lists again too.

        Without `follow` it stops once it caught up with the revision the registry had when
        the watch began (after the snapshot, when it lists).
        """
        span = stream_span("WatchRegistry", self._target.address)
        last = after_revision
        # The registry's revision when the first stream was created: where `follow=False` stops.
        caught_up_at: int | None = None
        established = False

        async def attempt() -> AsyncGenerator[RegistryItem, None]:
            nonlocal last, caught_up_at, established
            while True:
                if last is None:
                    snapshot = await self.list_nodes()
                    last = snapshot.revision
                    yield snapshot
                    if not follow:
                        return
                try:
                    async with aclosing(self._stream(last)) as stream:
                        async for changes, revision in stream:
                            resumer.progressed()
                            if revision is not None:  # the `created` response
                                established = True
                                if caught_up_at is None:
                                    caught_up_at = revision
                            for change in changes:
                                if change.revision <= last:
                                    continue  # a resumed stream must not repeat anything
                                last = change.revision
                                yield change
                            if not follow and caught_up_at is not None and last >= caught_up_at:
                                return
                except KodoclientError as e:
                    if e.reason == COMPACTED or (e.reason == IN_FUTURE and established):
                        log.info(
                            "registry watch cannot resume after %s (%s); listing again",
                            last,
                            e.reason,
                        )
                        last = None
                        continue
                    raise
                raise StreamBroken("the registry ended the stream")

        resumer = Resumer(
            "WatchRegistry",
            self._reconnect,
            self._rng,
            where=lambda: f"revision {last}",
            on_reconnect=on_reconnect,
            on_resumed=on_resumed,
        )
        try:
            async with aclosing(resumer.run(attempt)) as items:
                async for item in items:
                    yield item
        except BaseException as e:
            fail(span, e)
            raise
        finally:
            span.end()

    async def _stream(
        self, after_revision: int
    ) -> AsyncGenerator[tuple[list[rpb.RegistryChange], int | None], None]:
        """One WatchRegistry stream: (changes, registry revision if this is the `created`
        response else None). Failures as `KodoclientError`, with the transport's code."""
        call = self._registry().WatchRegistry(
            rpb.WatchRegistryRequest(after_revision=after_revision)
        )
        try:
            async for response in call:
                yield list(response.changes), response.revision if response.created else None
        except grpc.aio.AioRpcError as e:
            error = KodoclientError.from_rpc(e, "WatchRegistry")
            if resumable_rpc_error(e):
                error.code = grpc.StatusCode.UNAVAILABLE  # a reset stream: the link went away
            raise error from None
        finally:
            call.cancel()
