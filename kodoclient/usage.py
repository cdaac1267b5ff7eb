"""Metered usage of a node's executions (`AsyncClient.usage()`, docs/market.md): summaries
grouped by user, group, flow, node, day, month or execution, and one execution's record."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

from kodosumi.v1 import usage_pb2, usage_pb2_grpc

_Resp = TypeVar("_Resp")

GROUP_BY = ("user", "group", "flow", "node", "day", "month", "execution")


class _Unary(Protocol):
    async def __call__(
        self,
        method: str,
        call: Callable[..., Awaitable[_Resp]],
        request: Any,
        call_timeout: float | None,
    ) -> _Resp: ...


class UsageClient:
    def __init__(self, stub: usage_pb2_grpc.UsageServiceAsyncStub, unary: _Unary) -> None:
        self._stub = stub
        self._unary = unary

    async def list_page(
        self, request: usage_pb2.ListUsageRequest, *, call_timeout: float | None = None
    ) -> usage_pb2.ListUsageResponse:
        return await self._unary("ListUsage", self._stub.ListUsage, request, call_timeout)

    async def list_usage(
        self,
        *,
        group_by: str = "",
        user: str = "",
        group: str = "",
        flow: str = "",
        node: str = "",
        since_unix_nano: int = 0,
        until_unix_nano: int = 0,
        page_size: int = 100,
        call_timeout: float | None = None,
    ) -> AsyncGenerator[usage_pb2.UsageSummaryRow, None]:
        """Every summary row, by key, fetching pages as they are consumed."""
        token = ""
        while True:
            page = await self.list_page(
                usage_pb2.ListUsageRequest(
                    user=user,
                    group=group,
                    flow=flow,
                    node=node,
                    since_unix_nano=since_unix_nano,
                    until_unix_nano=until_unix_nano,
                    group_by=group_by,
                    page_size=page_size,
                    page_token=token,
                ),
                call_timeout=call_timeout,
            )
            for row in page.rows:
                yield row
            token = page.next_page_token
            if not token:
                return

    async def execution_usage(
        self, execution_id: str, *, call_timeout: float | None = None
    ) -> usage_pb2.GetExecutionUsageResponse:
        request = usage_pb2.GetExecutionUsageRequest(execution_id=execution_id)
        return await self._unary(
            "GetExecutionUsage", self._stub.GetExecutionUsage, request, call_timeout
        )


class SyncUsageClient:
    """`UsageClient` for the blocking `Client` (each call runs on the client's loop thread)."""

    def __init__(
        self,
        run: Callable[[Coroutine[Any, Any, Any]], Any],
        iterate: Callable[[AsyncGenerator[Any, None]], Iterator[Any]],
        usage: UsageClient,
    ) -> None:
        self._run = run
        self._iterate = iterate
        self._usage = usage

    def list_usage(self, **filters: Any) -> Iterator[usage_pb2.UsageSummaryRow]:
        """`UsageClient.list_usage` (the same keyword filters)."""
        return self._iterate(self._usage.list_usage(**filters))

    def execution_usage(
        self, execution_id: str, *, call_timeout: float | None = None
    ) -> usage_pb2.GetExecutionUsageResponse:
        coro = self._usage.execution_usage(execution_id, call_timeout=call_timeout)
        return self._run(coro)  # type: ignore[no-any-return]
