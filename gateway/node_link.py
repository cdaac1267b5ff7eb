"""The gateway's gRPC link to one node: the SDK (`kodoclient.AsyncClient`) with the gateway's
own certificate, checking that the server is the node the configuration names.

Besides the plain calls it answers one question the SDK has no call for: after a crash
between "launch" and "write down the execution id", did the launch happen? LaunchExecution
has no idempotency key, so the gateway finds its own executions of that flow, launched since
the job went `launching`, with exactly the job's inputs, that no other job has claimed. Jobs
with equal flow and inputs are interchangeable, so whichever one of them a job adopts, no job
is launched twice and none is lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Any

from kodoclient import AsyncClient, ConnectConfig, KodoclientError, ReconnectPolicy
from kodosumi.jsonvalue import struct_to_dict
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, flow_pb2

__all__ = ["KodoclientError", "NodeLink"]

# How far back a reconciling search looks beyond the launching time (clock skew between the
# gateway and the node).
_SKEW_SECONDS = 120.0


class NodeLink:
    def __init__(
        self,
        name: str,
        address: str,
        tls: TlsMaterial | None,
        *,
        node_id: str = "",
        call_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.address = address
        config = ConnectConfig(
            target=address,
            tls=tls,
            call_timeout=call_timeout,
            # A watch outlives a node restart; the driver decides when a job gives up.
            reconnect=ReconnectPolicy(),
            expect=ServerExpectation.node(node_id or None),
        )
        self.client = AsyncClient(config)

    async def close(self) -> None:
        await self.client.close()

    async def flow(self, name: str) -> flow_pb2.Flow:
        return await self.client.get_flow(name)

    @staticmethod
    def schema_of(flow: flow_pb2.Flow) -> dict[str, Any]:
        return struct_to_dict(flow.input_schema) if flow.HasField("input_schema") else {}

    async def launch(self, flow: str, inputs: dict[str, Any], quote_id: str = "") -> str:
        execution = await self.client.launch(flow, inputs, quote_id=quote_id)
        return execution.execution_id

    async def quote(self, flow: flow_pb2.Flow, inputs: dict[str, Any]) -> str:
        """A quote of the node for one run of a priced flow (the run is charged by its terms
        and held to its ceiling); bounded by the flow's own timeout where it charges by time."""
        quote = await self.client.quotes().request(
            flow.name, inputs, max_seconds=flow.timeout_seconds or 0.0
        )
        return quote.quote_id

    async def find_launched(
        self, flow: str, inputs: dict[str, Any], since: float, claimed: set[str]
    ) -> str | None:
        """The oldest unclaimed execution of `flow` with `inputs` created since `since`."""
        found: list[flow_pb2.Execution] = []
        async for execution in self.client.list_executions(flow=flow, page_size=200):
            created = execution.create_time.ToDatetime(tzinfo=dt.UTC).timestamp()
            if created < since - _SKEW_SECONDS:
                break  # newest first: the rest is older
            if execution.execution_id in claimed:
                continue
            if struct_to_dict(execution.inputs) == inputs:
                found.append(execution)
        return found[-1].execution_id if found else None

    async def execution(self, execution_id: str) -> flow_pb2.Execution:
        return await self.client.get_execution(execution_id)

    async def watch(
        self, execution_id: str, after_seq: int = 0
    ) -> AsyncGenerator[event_pb2.Event, None]:
        async for event in self.client.watch(execution_id, after_seq):
            yield event

    async def provide_input(self, execution_id: str, request_id: str, value: Any) -> None:
        await self.client.provide_input(execution_id, request_id, value)

    async def cancel(self, execution_id: str, reason: str) -> None:
        await self.client.cancel(execution_id, reason)

    async def download(self, file_id: str) -> bytes:
        return await self.client.files().read(file_id)
