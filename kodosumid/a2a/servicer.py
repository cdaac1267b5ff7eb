"""`lf.a2a.v1.A2AService` on the node's gRPC server: decode, check the version, call the task
operations (`tasks.py`), encode.

The guard has authenticated and authorized the caller (`kodosumid/auth/policy.py`) before
any method runs; A2A errors are catalog errors with the `a2a-protocol.org` domain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from a2a.types import a2a_pb2 as a2a
from a2a.types import a2a_pb2_grpc
from google.protobuf import empty_pb2

from kodosumi.authz import Principal
from kodosumi.errors import KodosumiError, NotFound
from kodosumi.rpc.guard import current_principal
from kodosumid.a2a.cards import CardSettings, SigningMaterial, flow_card, node_card, signed
from kodosumid.a2a.errors import (
    InvalidParams,
    PushNotificationNotSupported,
    UnsupportedOperation,
    VersionNotSupported,
)
from kodosumid.a2a.subscribe import subscribe
from kodosumid.a2a.tasks import A2ATasks
from kodosumid.auth.roles import check_flow_access
from kodosumid.catalog import Catalog
from kodosumid.config import FlowEntry

Context = grpc.aio.ServicerContext[Any, Any]
VERSION_KEY = "a2a-version"
SUPPORTED_VERSION = (1, 0)


def check_version(context: Context) -> None:
    """A2A-Version must be 1.0 (a patch level is ignored); none means 0.3 (§3.6.2). Every
    value the call carries must be supported (no picking the one that suits)."""
    versions = [
        value if isinstance(value, str) else value.decode(errors="replace")
        for key, value in context.invocation_metadata() or ()
        if key.lower() == VERSION_KEY
    ]
    for version in versions or ["0.3"]:
        text = version.strip() or "0.3"
        try:
            numbers = tuple(int(x) for x in text.split(".")[:2])
        except ValueError:
            numbers = ()
        if numbers != SUPPORTED_VERSION:
            raise VersionNotSupported(
                f"A2A version {text[:40]!r} is not supported; this agent speaks 1.0",
                metadata={"supported": "1.0"},
            )


def _history_length(request: a2a.GetTaskRequest | a2a.SendMessageConfiguration) -> int | None:
    if not request.HasField("history_length"):
        return None
    if request.history_length < 0:
        raise InvalidParams.field("history_length", "must not be negative")
    return request.history_length


def _may_use(principal: Principal, flow: FlowEntry) -> bool:
    try:
        check_flow_access(principal, flow)
    except KodosumiError:
        return False
    return True


class A2AServicer(a2a_pb2_grpc.A2AServiceServicer):
    def __init__(
        self,
        tasks: A2ATasks,
        catalog: Catalog,
        settings: Callable[[], CardSettings],
        signing: SigningMaterial,
    ) -> None:
        self.tasks = tasks
        self.catalog = catalog
        self.settings = settings
        self.signing = signing

    async def SendMessage(
        self, request: a2a.SendMessageRequest, context: Context
    ) -> a2a.SendMessageResponse:
        check_version(context)
        principal = current_principal()
        history = _history_length(request.configuration)
        record, fold, _ = await self.tasks.send(principal, request)
        if request.configuration.return_immediately:
            return a2a.SendMessageResponse(task=fold.task(history))
        with self.tasks.quotas.open_stream(principal):  # it watches while it blocks
            async for _update in self.tasks.follow(
                principal, record, fold, stop_when_interrupted=True
            ):
                pass
        return a2a.SendMessageResponse(task=fold.task(history))

    async def SendStreamingMessage(
        self, request: a2a.SendMessageRequest, context: Context
    ) -> AsyncIterator[a2a.StreamResponse]:
        check_version(context)
        principal = current_principal()
        with self.tasks.quotas.open_stream(principal):
            record, fold, stop = await self.tasks.send(principal, request)
            stream = self.tasks.follow(principal, record, fold, stop_when_interrupted=stop)
            async for update in stream:
                yield update

    async def GetTask(self, request: a2a.GetTaskRequest, context: Context) -> a2a.Task:
        check_version(context)
        return await self.tasks.get_task(
            current_principal(), request.id, request.tenant, _history_length(request)
        )

    async def ListTasks(
        self, request: a2a.ListTasksRequest, context: Context
    ) -> a2a.ListTasksResponse:
        check_version(context)
        return await self.tasks.list_tasks(current_principal(), request)

    async def CancelTask(self, request: a2a.CancelTaskRequest, context: Context) -> a2a.Task:
        check_version(context)
        return await self.tasks.cancel(current_principal(), request.id, request.tenant)

    async def SubscribeToTask(
        self, request: a2a.SubscribeToTaskRequest, context: Context
    ) -> AsyncIterator[a2a.StreamResponse]:
        check_version(context)
        principal = current_principal()
        record = await self.tasks.visible(principal, request.id, request.tenant)
        if record.terminal:
            raise UnsupportedOperation(f"task {request.id} already ended; use GetTask")
        with self.tasks.quotas.open_stream(principal):
            async for update in subscribe(self.tasks, principal, record):
                yield update

    # -- push notifications: not supported (the card says so) -----------------------------------

    def _no_push(self, context: Context) -> PushNotificationNotSupported:
        check_version(context)
        return PushNotificationNotSupported(
            "push notifications are not supported by this agent: stream, subscribe or poll"
        )

    async def CreateTaskPushNotificationConfig(
        self, request: a2a.TaskPushNotificationConfig, context: Context
    ) -> a2a.TaskPushNotificationConfig:
        raise self._no_push(context)

    async def GetTaskPushNotificationConfig(
        self, request: a2a.GetTaskPushNotificationConfigRequest, context: Context
    ) -> a2a.TaskPushNotificationConfig:
        raise self._no_push(context)

    async def ListTaskPushNotificationConfigs(
        self, request: a2a.ListTaskPushNotificationConfigsRequest, context: Context
    ) -> a2a.ListTaskPushNotificationConfigsResponse:
        raise self._no_push(context)

    async def DeleteTaskPushNotificationConfig(
        self, request: a2a.DeleteTaskPushNotificationConfigRequest, context: Context
    ) -> empty_pb2.Empty:
        raise self._no_push(context)

    # -- cards ----------------------------------------------------------------------------------

    async def GetExtendedAgentCard(
        self, request: a2a.GetExtendedAgentCardRequest, context: Context
    ) -> a2a.AgentCard:
        """The node's card with the flows the caller may launch, or (tenant) a flow's card."""
        check_version(context)
        principal = current_principal()
        if request.tenant:
            try:
                flow = self.catalog.get(request.tenant)
            except NotFound:
                raise InvalidParams.field("tenant", f"no flow {request.tenant!r}") from None
            return signed(flow_card(self.settings(), flow), self.signing)
        flows = [f for f in self.catalog.list() if _may_use(principal, f)]
        return signed(node_card(self.settings(), flows), self.signing)
