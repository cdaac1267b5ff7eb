"""The gRPC `FlowCaller` of an executor: flows calling flows through their own node.

Imported only inside the executor actor (it builds one for its `ExecutionHost`). A child is
launched on the node that hosts the parent (`LaunchExecution` with `parent_execution_id`),
which runs it or hands it to a peer that offers the flow; the caller then follows the
child's `WatchExecution` stream to its terminal status and returns its result.

Each call dials with the identity of the calling flow (issued by the auth provider) when it
has one, else with the node's own credentials. They arrive as data with every start of an
execution (`executors/credentials.py`): the executor may run on a host where the node's files
do not exist. New credentials (renewed certificates) replace the flow's channel.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc

from engine.calls import ChildLaunch, ChildResult
from kodosumi.jsonvalue import dict_to_struct
from kodosumi.rpc.channel import CHANNEL_OPTIONS, identity_options
from kodosumi.server_identity import ServerExpectation
from kodosumi.statuses import TERMINAL
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import event_pb2, flow_pb2, flow_pb2_grpc
from kodosumid.executors.agent_caller import AgentCaller
from kodosumid.executors.caller_settings import CallerSettings
from kodosumid.executors.credentials import Credentials

log = logging.getLogger(__name__)

# Deadline of the unary calls (launch, cancel); a watch runs as long as the child does.
CALL_TIMEOUT_SECONDS = 30.0


class GrpcFlowCaller(AgentCaller):
    """`engine.calls.FlowCaller` over the node's FlowService (sync gRPC, thread-safe), and
    `ctx.call_agent` to A2A agents with the same credentials (`agent_caller.py`)."""

    def __init__(self, settings: CallerSettings) -> None:
        super().__init__(self._dialled_with)
        self.settings = settings
        self._lock = threading.Lock()
        # Per calling flow: the credentials it dials with (None: insecure node).
        self._flow_credentials: dict[str, Credentials | None] = {}
        # Per calling flow: (the credentials the channel was made with, channel).
        self._channels: dict[str, tuple[Credentials | None, grpc.Channel]] = {}
        self._watches: dict[str, grpc.Call] = {}

    def use(self, flow: str, credentials: Credentials | None) -> None:
        """What `flow` dials with from now on (sent with each start of one of its runs)."""
        with self._lock:
            self._flow_credentials[flow] = credentials

    def _dialled_with(self, flow: str) -> Credentials | None:
        with self._lock:
            return self._flow_credentials.get(flow)

    def _stub(self, flow: str) -> flow_pb2_grpc.FlowServiceStub:
        return flow_pb2_grpc.FlowServiceStub(self.channel(flow))

    def channel(self, flow: str) -> grpc.Channel:
        """The channel to the node with `flow`'s credentials (files use it too)."""
        with self._lock:
            credentials = self._flow_credentials.get(flow)
            cached = self._channels.get(flow)
            if cached is not None and cached[0] == credentials:
                return cached[1]
            if credentials is None:
                channel = grpc.insecure_channel(self.settings.address, options=CHANNEL_OPTIONS)
            else:
                ca, cert, key = credentials
                # The executor's own node, and no other server, gets the call.
                expect = ServerExpectation.node(self.settings.node_id)
                options = identity_options(TlsMaterial(ca, cert, key), expect)
                channel = grpc.secure_channel(
                    self.settings.address,
                    grpc.ssl_channel_credentials(
                        root_certificates=ca, private_key=key, certificate_chain=cert
                    ),
                    options=options,
                )
            if cached is not None:
                cached[1].close()  # renewed credentials: calls in flight on the old one may fail
            self._channels[flow] = (credentials, channel)
            return channel

    def launch(
        self,
        flow: str,
        inputs: dict[str, Any],
        *,
        parent_execution_id: str,
        parent_flow: str,
        node: str | None = None,
    ) -> ChildLaunch:
        # `node`: the node is asked for the flow; it runs it or forwards it to a peer that
        # offers it. Picking a particular peer is not supported yet (logged, not refused).
        if node and node != self.settings.node_id:
            log.info(
                "call_flow(%r, node=%r): launched through node %s",
                flow,
                node,
                self.settings.node_id,
            )
        request = flow_pb2.LaunchExecutionRequest(
            flow=flow, inputs=dict_to_struct(inputs), parent_execution_id=parent_execution_id
        )
        response = self._stub(parent_flow).LaunchExecution(request, timeout=CALL_TIMEOUT_SECONDS)
        execution = response.execution
        return ChildLaunch(
            execution_id=execution.execution_id,
            flow=execution.flow or flow,
            node_id=execution.node_id,
            caller_flow=parent_flow,
        )

    def wait(self, child: ChildLaunch, timeout: float | None = None) -> ChildResult:
        request = flow_pb2.WatchExecutionRequest(execution_id=child.execution_id)
        call = self._stub(child.caller_flow).WatchExecution(request, timeout=timeout)
        with self._lock:
            self._watches[child.execution_id] = call
        result: event_pb2.Result | None = None
        try:
            for response in call:
                for event in response.events:
                    if event.HasField("result"):
                        result = event.result
                    elif event.HasField("status_changed"):
                        change = event.status_changed
                        if change.status in TERMINAL:
                            return ChildResult(
                                child.execution_id, change.status, change.reason, result
                            )
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(f"child {child.execution_id} did not end in time") from None
            if code == grpc.StatusCode.CANCELLED:  # `cancel` stopped the wait
                return ChildResult(
                    child.execution_id, event_pb2.EXECUTION_STATUS_CANCELLED, "cancelled"
                )
            raise
        finally:
            with self._lock:
                self._watches.pop(child.execution_id, None)
        raise RuntimeError(f"the stream of child {child.execution_id} ended without a status")

    def cancel(self, child: ChildLaunch, reason: str) -> None:
        try:
            self._stub(child.caller_flow).CancelExecution(
                flow_pb2.CancelExecutionRequest(execution_id=child.execution_id, reason=reason),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.RpcError as e:
            log.info("cancelling child %s: %s", child.execution_id, e)
        except Exception:
            log.exception("cancelling child %s failed", child.execution_id)
        with self._lock:
            call = self._watches.get(child.execution_id)
        if call is not None:
            call.cancel()

    def close(self) -> None:
        with self._lock:
            for _, channel in self._channels.values():
                channel.close()
            self._channels.clear()
