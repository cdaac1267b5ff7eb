"""Agent cards from a real node: over gRPC (GetExtendedAgentCard) and HTTP discovery, signed
with the node's key and verified offline against the trust domain's CA."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from a2a.client import A2ACardResolver
from a2a.types import a2a_pb2 as a2a

from kodosumi.agent_card import CardSignatureError, card_verifier, sign_card, verify_card
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, load_certificate
from kodosumi.spiffe import SpiffeId
from tests.a2a.conftest import ClientMaker
from tests.a2a.helpers import collect, send_request, text_message
from tests.node.conftest import RunningNode


def _ca(node: RunningNode) -> CertificateAuthority:
    pki = node.app.config.state_dir / "pki"
    return CertificateAuthority.load(pki / "ca.pem", pki / "ca.key")


async def test_the_node_card_over_grpc_is_signed_and_describes_the_node(
    a2a_node: RunningNode, a2a_client: ClientMaker
) -> None:
    ca = _ca(a2a_node)
    client = a2a_client()
    card = await client.get_extended_agent_card(
        a2a.GetExtendedAgentCardRequest(), signature_verifier=card_verifier(ca.cert)
    )
    assert str(verify_card(card, ca.cert)) == "spiffe://local.kodosumi/node/test-node"
    assert card.capabilities.streaming and card.capabilities.extended_agent_card
    assert not card.capabilities.push_notifications
    assert "not supported" in card.description
    (interface,) = card.supported_interfaces
    assert interface.url == a2a_node.app.address
    assert (interface.protocol_binding, interface.protocol_version) == ("GRPC", "1.0")
    assert card.security_schemes["mtls"].HasField("mtls_security_scheme")
    assert "mtls" in card.security_requirements[0].schemes
    skills = {s.id: s for s in card.skills}
    assert {"hello", "emit-many", "private"} <= set(skills)  # the admin may launch all
    assert '"inputSchema"' in skills["emit-many"].examples[0]
    assert "text/plain" in skills["hello"].input_modes


async def test_a_flow_card_has_the_flow_as_tenant(
    a2a_node: RunningNode, a2a_client: ClientMaker
) -> None:
    client = a2a_client(tenant="hello")
    card = await client.get_extended_agent_card(a2a.GetExtendedAgentCardRequest())
    verify_card(card, _ca(a2a_node).cert)
    assert card.supported_interfaces[0].tenant == "hello"
    assert [s.id for s in card.skills] == ["hello"]


async def test_the_extended_card_lists_only_flows_the_caller_may_launch(
    a2a_client: ClientMaker,
) -> None:
    card = await a2a_client(user="dave").get_extended_agent_card(a2a.GetExtendedAgentCardRequest())
    assert "private" not in {s.id for s in card.skills}
    assert "hello" in {s.id for s in card.skills}


async def test_http_discovery_then_a_task_from_the_discovered_card(
    a2a_node: RunningNode, a2a_client: ClientMaker
) -> None:
    assert a2a_node.app.a2a_http is not None
    base = f"http://127.0.0.1:{a2a_node.app.a2a_http.port}"
    verifier = card_verifier(_ca(a2a_node).cert)
    async with httpx.AsyncClient() as http:
        card = await A2ACardResolver(http, base).get_agent_card(signature_verifier=verifier)
        assert "private" not in {s.id for s in card.skills}  # public: open flows only
        flow = await A2ACardResolver(http, base + "/flows/hello").get_agent_card(
            signature_verifier=verifier
        )
        missing = await http.get(base + "/flows/private/.well-known/agent-card.json")
        assert missing.status_code == 404
    client = a2a_client(card=flow)
    items = await collect(client.send_message(send_request(text_message("web"))))
    assert items[-1].status_update.status.state == a2a.TASK_STATE_COMPLETED


async def test_a_tampered_or_foreign_card_does_not_verify(
    a2a_node: RunningNode, a2a_client: ClientMaker, tmp_path: object
) -> None:
    ca = _ca(a2a_node)
    card = await a2a_client().get_extended_agent_card(a2a.GetExtendedAgentCardRequest())
    tampered = a2a.AgentCard()
    tampered.CopyFrom(card)
    tampered.supported_interfaces[0].url = "evil.example:443"
    with pytest.raises(CardSignatureError):
        verify_card(tampered, ca.cert)
    unsigned = a2a.AgentCard()
    unsigned.CopyFrom(card)
    del unsigned.signatures[:]
    with pytest.raises(CardSignatureError):
        verify_card(unsigned, ca.cert)
    # Signed by a key of another CA (same trust domain name): refused.
    state = a2a_node.app.config.state_dir
    foreign = CertificateAuthority.create("local.kodosumi", state / "f.pem", state / "f.key")
    cert, key = foreign.issue(SpiffeId.node("local.kodosumi", "test-node"))
    forged = sign_card(unsigned, key_pem(key), cert_pem(cert))
    with pytest.raises(CardSignatureError):
        verify_card(forged, ca.cert)
    # The node's own signature, checked after its certificate expired: refused.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    with pytest.raises(CardSignatureError):
        verify_card(card, ca.cert, now=later)
    assert load_certificate(state / "pki" / "ca.pem") == ca.cert
