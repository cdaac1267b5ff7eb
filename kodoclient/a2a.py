"""A2A from the client side: a2a-sdk clients over the same mTLS channel as our own SDK.

`a2a_client` gives the a2a-sdk's `Client` (ClientFactory, gRPC transport) for a node or any
A2A agent whose card names a GRPC interface; `fetch_card` asks a node for its card over
gRPC (`GetExtendedAgentCard`), `discover_card` reads one from HTTP discovery
(`/.well-known/agent-card.json`). Errors leave as `KodoclientError`, like the rest of the SDK.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, AgentCardResolutionError
from a2a.types import a2a_pb2 as a2a
from a2a.utils.errors import A2AError

from kodoclient.config import ConnectConfig
from kodoclient.errors import KodoclientError
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation

GRPC = "GRPC"


def bootstrap_card(address: str, tenant: str = "") -> a2a.AgentCard:
    """The least card a client needs to ask a node for its real one: the gRPC interface."""
    return a2a.AgentCard(
        name=address,
        supported_interfaces=[
            a2a.AgentInterface(
                url=address, protocol_binding=GRPC, protocol_version="1.0", tenant=tenant
            )
        ],
        capabilities=a2a.AgentCapabilities(streaming=True, extended_agent_card=True),
    )


def a2a_client(
    config: ConnectConfig,
    *,
    card: a2a.AgentCard | None = None,
    tenant: str = "",
    streaming: bool = True,
) -> Client:
    """An a2a-sdk client of `card` (default: the node of `config`, flow `tenant`), dialing
    with `config`'s credentials."""
    tls = config.tls
    factory = ClientFactory(
        ClientConfig(
            streaming=streaming,
            # A2A agents are nodes: the configured node is checked by its id when known.
            grpc_channel_factory=lambda url: open_channel(
                url,
                tls,
                expect=config.expect if url == config.target else ServerExpectation.node(),
            ),
            supported_protocol_bindings=[GRPC],
        )
    )
    try:
        return factory.create(card or bootstrap_card(config.target, tenant))
    except ValueError as e:
        raise KodoclientError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the agent's card: {e}",
            reason="NO_GRPC_INTERFACE",
        ) from None


@contextlib.asynccontextmanager
async def a2a_errors(method: str) -> AsyncIterator[None]:
    """Turn the a2a-sdk's errors into `KodoclientError` (status, reason, fields kept)."""
    try:
        yield
    except (A2AError, A2AClientError) as e:
        cause = e.__cause__
        if isinstance(cause, grpc.RpcError):
            raise KodoclientError.from_rpc(cause, method) from None
        if isinstance(e, AgentCardResolutionError):
            raise KodoclientError(grpc.StatusCode.UNAVAILABLE, str(e), method=method) from None
        raise KodoclientError(grpc.StatusCode.UNKNOWN, str(e), method=method) from None
    except httpx.HTTPError as e:
        raise KodoclientError(
            grpc.StatusCode.UNAVAILABLE, f"agent card: {e}", method=method
        ) from None


async def fetch_card(config: ConnectConfig, flow: str = "") -> a2a.AgentCard:
    """The node's card (or a flow's) over gRPC, as the caller's identity sees it."""
    client = a2a_client(config, tenant=flow)
    try:
        async with a2a_errors("GetExtendedAgentCard"):
            return await client.get_extended_agent_card(a2a.GetExtendedAgentCardRequest())
    finally:
        await client.close()


async def discover_card(url: str) -> a2a.AgentCard:
    """A card from A2A's HTTP discovery: `url` + `/.well-known/agent-card.json`."""
    async with httpx.AsyncClient(timeout=10.0) as http, a2a_errors("agent-card"):
        return await A2ACardResolver(http, url.rstrip("/")).get_agent_card()
    raise AssertionError("unreachable")  # pragma: no cover
