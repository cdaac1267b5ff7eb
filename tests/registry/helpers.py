"""Builders and waiting helpers for the registry tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from google.protobuf import duration_pb2

from kodosumi.authz import ADMIN, FLOW, NODE, USER, Principal
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import flow_pb2
from kodosumi.v1 import registry_pb2 as pb
from registryd import codec
from registryd.model import FlowEntry, NodeAnnouncement, NodeLoad
from registryd.policy import INSECURE_ROLES

DOMAIN = "test.kodosumi"


def flow_pb(name: str, *tags: str, version: str = "1", schema_title: str = "") -> flow_pb2.Flow:
    return flow_pb2.Flow(
        name=name,
        entrypoint=f"flows.{name.replace('-', '_')}:run",
        description=f"the {name} flow",
        tags=list(tags),
        version=version,
        input_schema=dict_to_struct(
            {
                "type": "object",
                "title": schema_title or name,
                "properties": {"query": {"type": "string"}},
            }
        ),
        timeout_seconds=30,
    )


def flow(node_id: str, name: str, *tags: str, version: str = "1") -> FlowEntry:
    return codec.flow_entry(flow_pb(name, *tags, version=version), node_id, 0)


def announcement(
    node_id: str,
    flows: Sequence[tuple[str, tuple[str, ...]]] = (("hello", ("demo",)),),
    *,
    endpoints: tuple[str, ...] = ("127.0.0.1:7450",),
    version: str = "0.1.0",
    interval: float | None = 10.0,
    load: NodeLoad | None = None,
) -> NodeAnnouncement:
    return NodeAnnouncement(
        node_id=node_id,
        endpoints=endpoints,
        flows=tuple(flow(node_id, name, *tags) for name, tags in flows),
        version=version,
        capabilities=("crewai",),
        heartbeat_interval=interval,
        load=load,
    )


def register_request(
    node_id: str,
    flows: Sequence[flow_pb2.Flow] = (),
    *,
    interval: float | None = 10.0,
    endpoints: Sequence[str] = ("127.0.0.1:7450",),
) -> pb.RegisterNodeRequest:
    request = pb.RegisterNodeRequest(
        node_id=node_id,
        endpoints=list(endpoints),
        flows=list(flows) or [flow_pb("hello", "demo")],
        version="0.1.0",
        capabilities=["crewai"],
    )
    if interval is not None:
        request.heartbeat_interval.CopyFrom(seconds(interval))
    return request


def seconds(value: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(value * 1e9))
    return d


def node_principal(node_id: str) -> Principal:
    return Principal(SpiffeId.node(DOMAIN, node_id), frozenset({NODE}))


def user_principal(name: str = "alice") -> Principal:
    return Principal(SpiffeId.user(DOMAIN, name), frozenset({USER}))


def admin_principal(name: str = "root") -> Principal:
    return Principal(SpiffeId.user(DOMAIN, name), frozenset({USER, ADMIN}))


def flow_principal(node_id: str, name: str) -> Principal:
    return Principal(SpiffeId.flow(DOMAIN, node_id, name), frozenset({FLOW}))


INSECURE = Principal(None, INSECURE_ROLES)


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 20, interval: float = 0.02
) -> None:
    """Poll `check` until it holds; fail after `within` seconds (never a bare sleep)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
