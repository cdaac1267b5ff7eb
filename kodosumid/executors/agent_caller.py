"""`ctx.call_agent` inside an executor: a flow calling an A2A 1.0 agent over gRPC.

Imported only inside the executor actor, as `flow_caller.py`. The call runs in the calling
flow's thread with an event loop of its own (the a2a-sdk client is asyncio): it finds the
agent's card (a gRPC address as is, an `http(s)://` URL by HTTP discovery, or a card),
dials with the flow's identity when it has one (else the node's, as `call_flow` does), sends
the message with `SendStreamingMessage` and hands every update to the flow's events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as a2a
from google.protobuf.json_format import MessageToDict

from engine.calls import AgentResult
from kodosumi.jsonvalue import python_to_value, value_to_python
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumid.executors.credentials import Credentials

# Updates handed to the flow: (kind, JSON of the update).
OnUpdate = Callable[[str, dict[str, Any]], None]
TERMINAL_OR_INTERRUPTED = frozenset(
    {
        a2a.TASK_STATE_COMPLETED,
        a2a.TASK_STATE_FAILED,
        a2a.TASK_STATE_CANCELED,
        a2a.TASK_STATE_REJECTED,
        a2a.TASK_STATE_INPUT_REQUIRED,
        a2a.TASK_STATE_AUTH_REQUIRED,
    }
)


def grpc_card(address: str, tenant: str = "") -> a2a.AgentCard:
    return a2a.AgentCard(
        name=address,
        supported_interfaces=[
            a2a.AgentInterface(
                url=address, protocol_binding="GRPC", protocol_version="1.0", tenant=tenant
            )
        ],
        capabilities=a2a.AgentCapabilities(streaming=True),
    )


def _message(content: str | dict[str, Any]) -> a2a.Message:
    message = a2a.Message(message_id=uuid.uuid4().hex, role=a2a.ROLE_USER)
    part = message.parts.add()
    if isinstance(content, str):
        part.text = content
    else:
        python_to_value(content, part.data)
    return message


def _value(artifact: a2a.Artifact) -> Any:
    for part in artifact.parts:
        if part.HasField("data"):
            return value_to_python(part.data)
    texts = [p.text for p in artifact.parts if p.text]
    if texts:
        return "".join(texts)
    return b"".join(p.raw for p in artifact.parts) or None


async def _card(agent: Any, tenant: str) -> a2a.AgentCard:
    if isinstance(agent, a2a.AgentCard):
        return agent
    target = str(agent)
    if target.startswith(("http://", "https://")):
        async with httpx.AsyncClient(timeout=10.0) as http:
            return await A2ACardResolver(http, target.rstrip("/")).get_agent_card()
    return grpc_card(target, tenant)


async def _call(
    agent: Any,
    content: str | dict[str, Any],
    tenant: str,
    tls: TlsMaterial | None,
    on_update: OnUpdate,
) -> AgentResult:
    card = await _card(agent, tenant)
    config = ClientConfig(
        # A2A agents of the trust domain are nodes: the handshake checks that kind.
        grpc_channel_factory=lambda url: open_channel(url, tls, expect=ServerExpectation.node()),
        supported_protocol_bindings=["GRPC"],
    )
    client = ClientFactory(config).create(card)
    request = a2a.SendMessageRequest(message=_message(content))
    if tenant and isinstance(agent, str) and agent.startswith(("http://", "https://")):
        request.tenant = tenant
    task_id, state, reason = "", a2a.TASK_STATE_UNSPECIFIED, ""
    artifacts: dict[str, a2a.Artifact] = {}
    order: list[str] = []
    try:
        async for update in client.send_message(request):
            kind = str(update.WhichOneof("payload"))
            on_update(kind, MessageToDict(update))
            if kind == "task":
                task_id, state = update.task.id, update.task.status.state
            elif kind == "status_update":
                status = update.status_update.status
                state = status.state
                reason = " ".join(p.text for p in status.message.parts if p.text)
            elif kind == "artifact_update":
                chunk = update.artifact_update
                artifact_id = chunk.artifact.artifact_id
                if chunk.append and artifact_id in artifacts:
                    artifacts[artifact_id].parts.extend(chunk.artifact.parts)
                else:
                    artifacts[artifact_id] = chunk.artifact
                    order.append(artifact_id)
            elif kind == "message":
                # A direct answer, without a task.
                return AgentResult(
                    "", "COMPLETED", "", _value(a2a.Artifact(parts=update.message.parts))
                )
            if state in TERMINAL_OR_INTERRUPTED:
                break
    finally:
        await client.close()
    chosen = artifacts.get("result") or (artifacts[order[-1]] if order else None)
    name = a2a.TaskState.Name(state).removeprefix("TASK_STATE_")  # type: ignore[arg-type]
    return AgentResult(task_id, name, reason, _value(chosen) if chosen is not None else None)


class AgentCaller:
    """The `call_agent` half of the executor's caller (credentials as `GrpcFlowCaller`)."""

    def __init__(self, credentials: Callable[[str], Credentials | None]) -> None:
        self._credentials = credentials

    def call_agent(
        self,
        agent: Any,
        content: str | dict[str, Any],
        *,
        caller_flow: str,
        tenant: str = "",
        timeout: float | None = None,
        on_update: OnUpdate,
    ) -> AgentResult:
        triple = self._credentials(caller_flow)
        tls = TlsMaterial(*triple) if triple is not None else None
        call = _call(agent, content, tenant, tls, on_update)
        if timeout is not None:
            call = asyncio.wait_for(call, timeout)  # type: ignore[assignment]
        return asyncio.run(call)
