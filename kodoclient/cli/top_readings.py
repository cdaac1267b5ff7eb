"""How `koco top` takes a reading: the node's info and active executions, the alerts kept
current by a background stream, the node's peers and the registry's node list.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence

import grpc

from kodoclient._async import AsyncClient
from kodoclient.auth import resolve_registry
from kodoclient.cli.context import CliState
from kodoclient.cli.top_view import ACTIVE, ALERT_ROWS, Snapshot, rates
from kodoclient.errors import KodoclientError
from kodoclient.registry import RegistryClient
from kodosumi.v1 import event_pb2, flow_pb2, node_pb2
from kodosumi.v1 import registry_pb2 as rpb


class RegistryNodes:
    """The registry's node list for the network view (read-only, like any client)."""

    def __init__(self, state: CliState, address: str | None) -> None:
        settings = state.settings
        target = resolve_registry(
            address=address,
            state_dir=settings.state,
            ca=settings.ca,
            cert=settings.cert,
            key=settings.key,
            insecure=settings.insecure,
            call_timeout=settings.timeout,
        )
        self.address = target.address
        self.client = RegistryClient(target)

    async def nodes(self) -> list[rpb.RegisteredNode]:
        return list((await self.client.list_nodes()).nodes)

    async def close(self) -> None:
        await self.client.close()


class AlertFeed:
    """The newest alerts, kept current by a following stream in the background."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.recent: deque[event_pb2.Event] = deque(maxlen=ALERT_ROWS)
        self.note = ""
        # The last alert read: following goes on after it (the first frame shows the
        # stored ones, read before the first frame).
        self.last_seq = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def once(self) -> None:
        await self._read(follow=False)

    async def _follow(self) -> None:
        await self._read(follow=True)

    async def _read(self, follow: bool) -> None:
        try:
            async for event in self.client.alerts(self.last_seq, follow=follow):
                self.recent.append(event)
                self.last_seq = max(self.last_seq, event.seq)
        except KodoclientError as e:
            if e.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                self.note = "alerts are for operators and admins"
            else:
                self.note = f"alerts unavailable: {e.message}"

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


async def take(
    client: AsyncClient,
    feed: AlertFeed,
    registry: RegistryNodes | None,
    previous: Snapshot | None,
    peers: bool = False,
) -> Snapshot:
    info = await client.node_info()
    executions: Sequence[flow_pb2.Execution] = []
    with contextlib.suppress(KodoclientError):
        page, _ = await client.list_executions_page(page_size=100, statuses=list(ACTIVE))
        executions = page
    network: list[rpb.RegisteredNode] | None = None
    peer_list: list[node_pb2.Peer] | None = None
    network_note = ""
    if peers:
        try:
            peer_list = await client.peers()
        except KodoclientError as e:
            network_note = f"peers of the node: {e.message}"
    if registry is not None:
        try:
            network = await registry.nodes()
        except KodoclientError as e:
            network_note = f"registry {registry.address}: {e.message}"
    snapshot = Snapshot(
        at=time.monotonic(),
        node=info,
        executions=list(executions),
        alerts=list(feed.recent),
        alerts_note=feed.note,
        network=network,
        peers=peer_list,
        network_note=network_note,
    )
    snapshot.rates = rates(previous, snapshot)
    return snapshot
