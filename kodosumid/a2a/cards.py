"""The node's A2A agent cards: one for the node (its flows as skills) and one per flow.

A flow's card names the flow as the interface's `tenant`, so an A2A client created from it
sends every request to that flow. Cards are signed per answer with the node's current key
(renewed certificates sign from then on; `kodosumi/agent_card.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from a2a.types import a2a_pb2 as a2a

from kodosumi import __version__
from kodosumi.agent_card import sign_card
from kodosumid.a2a.mapping import single_string_field
from kodosumid.config import FlowEntry

PROTOCOL_VERSION = "1.0"
BINDING = "GRPC"
MTLS = "mtls"
OUTPUT_MODES = ("application/json", "text/plain", "text/markdown", "application/octet-stream")
_NO_PUSH = (
    " Push notifications are not supported (the push-notification methods answer "
    "PUSH_NOTIFICATION_NOT_SUPPORTED): stream, subscribe or poll instead."
)

# The node's key and certificate (PEM), read when a card is signed; None: unsigned cards.
SigningMaterial = Callable[[], tuple[bytes, bytes] | None]


@dataclass(frozen=True, slots=True)
class CardSettings:
    node_id: str
    address: str  # the gRPC address clients dial (advertised, else bound)
    trust_domain: str = ""


def _example(schema: dict[str, Any]) -> dict[str, Any]:
    """Inputs a client could send: each property's default, example or a typed blank."""
    blanks: dict[str, Any] = {
        "string": "",
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
        "object": {},
    }
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    example: dict[str, Any] = {}
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        if "default" in prop:
            example[name] = prop["default"]
        elif prop.get("examples"):
            example[name] = prop["examples"][0]
        else:
            example[name] = blanks.get(str(prop.get("type", "string")))
    return example


def skill_of(flow: FlowEntry) -> a2a.AgentSkill:
    """A flow as a skill: its example is a data part (JSON) holding inputs, with the flow's
    input JSON Schema in the part's metadata."""
    part = {"data": _example(flow.input_schema), "metadata": {"inputSchema": flow.input_schema}}
    examples = [json.dumps(part, sort_keys=True)]
    input_modes = ["application/json"]
    if single_string_field(flow.input_schema):
        input_modes.append("text/plain")
    return a2a.AgentSkill(
        id=flow.name,
        name=flow.name,
        description=flow.description or f"Runs the flow {flow.name!r} ({flow.entrypoint}).",
        tags=list(flow.tags) or ["flow"],
        examples=examples,
        input_modes=input_modes,
        output_modes=list(OUTPUT_MODES),
    )


def _card(
    settings: CardSettings, name: str, description: str, tenant: str, skills: list[a2a.AgentSkill]
) -> a2a.AgentCard:
    card = a2a.AgentCard(
        name=name,
        description=description + _NO_PUSH,
        version=__version__,
        supported_interfaces=[
            a2a.AgentInterface(
                url=settings.address,
                protocol_binding=BINDING,
                protocol_version=PROTOCOL_VERSION,
                tenant=tenant,
            )
        ],
        capabilities=a2a.AgentCapabilities(
            streaming=True, push_notifications=False, extended_agent_card=True
        ),
        default_input_modes=["application/json", "text/plain"],
        default_output_modes=list(OUTPUT_MODES),
        skills=skills,
    )
    if settings.trust_domain:
        card.provider.organization = settings.trust_domain
        card.provider.url = f"spiffe://{settings.trust_domain}/node/{settings.node_id}"
    card.security_schemes[
        MTLS
    ].mtls_security_scheme.description = (
        "Mutual TLS with a certificate of the trust domain's CA (one SPIFFE URI SAN)."
    )
    requirement = card.security_requirements.add()
    requirement.schemes[MTLS].SetInParent()
    return card


def node_card(settings: CardSettings, flows: Iterable[FlowEntry]) -> a2a.AgentCard:
    skills = [skill_of(f) for f in flows]
    return _card(
        settings,
        f"kodosumi node {settings.node_id}",
        "A Kodosumi node: each skill is a flow. Name it as the request's tenant (or the "
        "message metadata `skill`); each flow also has a card of its own.",
        "",
        skills,
    )


def flow_card(settings: CardSettings, flow: FlowEntry) -> a2a.AgentCard:
    return _card(
        settings,
        flow.name,
        flow.description or f"The Kodosumi flow {flow.name!r} on node {settings.node_id}.",
        flow.name,
        [skill_of(flow)],
    )


def signed(card: a2a.AgentCard, material: SigningMaterial) -> a2a.AgentCard:
    keys = material()
    if keys is None:
        return card
    key_pem, cert_pem = keys
    return sign_card(card, key_pem, cert_pem)
