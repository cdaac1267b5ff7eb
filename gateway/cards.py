"""The gateway's A2A agent cards (`/.well-known/agent-card.json`, and one per service at
`/<path>/.well-known/agent-card.json`), signed with the gateway's key (kodosumi/agent_card.py:
JWS over the JCS-canonical card, the certificate in `x5c`), so a marketplace verifies them
offline with the trust domain's CA.

A card's interface is where A2A itself is spoken: the node's A2A gRPC binding for the flow
(`GRPC`, the node's address; tasks there are executions, reached with an identity of the
trust domain). The MIP-003 endpoints are no A2A binding, so they are named in each skill's
description and examples, not as an interface.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from a2a.types import a2a_pb2 as a2a
from google.protobuf.json_format import MessageToDict

from gateway.config import GatewayConfig, ServiceConfig
from gateway.driver import Service
from kodosumi import __version__
from kodosumi.agent_card import sign_card
from kodosumi.tls import TlsMaterial

__all__ = ["card_json"]

PROTOCOL_VERSION = "1.0"
BINDING = "GRPC"


def _skill(config: GatewayConfig, service: ServiceConfig) -> a2a.AgentSkill:
    base = f"{config.public_url.rstrip('/')}/{service.path}"
    return a2a.AgentSkill(
        id=service.path,
        name=service.name or service.flow,
        description=(service.description or f"The flow {service.flow!r}.")
        + f" Bought as a MIP-003 agentic service at {base} (start_job, status, provide_input).",
        tags=["mip-003", service.flow],
        examples=[f"{base}/demo"] if service.demo_input is not None else [],
        input_modes=["application/json"],
        output_modes=["text/plain"],
    )


def _card(
    config: GatewayConfig, services: Iterable[Service], name: str, description: str
) -> a2a.AgentCard:
    listed = list(services)
    addresses = sorted({s.link.address for s in listed})
    card = a2a.AgentCard(
        name=name,
        description=description,
        version=__version__,
        supported_interfaces=[
            a2a.AgentInterface(
                url=address, protocol_binding=BINDING, protocol_version=PROTOCOL_VERSION
            )
            for address in addresses
        ],
        capabilities=a2a.AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["application/json"],
        default_output_modes=["text/plain"],
        skills=[_skill(config, s.config) for s in listed],
    )
    card.provider.organization = f"kodogate {config.gateway_id}"
    card.provider.url = config.public_url
    return card


def card_json(
    config: GatewayConfig,
    services: Mapping[str, Service],
    tls: TlsMaterial | None,
    path: str | None = None,
) -> dict[str, Any]:
    """The signed card of every service (`path` None) or of one."""
    if path is None:
        card = _card(
            config,
            services.values(),
            f"kodogate {config.gateway_id}",
            "Kodosumi flows sold as MIP-003 agentic services.",
        )
    else:
        service = services[path]
        card = _card(
            config,
            [service],
            service.config.name or service.config.flow,
            service.config.description or f"The flow {service.config.flow!r}.",
        )
    if tls is not None:
        card = sign_card(card, tls.key, tls.cert)
    return MessageToDict(card)  # type: ignore[no-any-return]
