"""The gRPC face of the registry: decode, call the domain, encode. Nothing else.

Authentication and the per-method authorization table run before these methods, in the guard
interceptor; catalog errors raised by the domain become their status there too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from kodosumi.rpc.guard import current_principal
from kodosumi.stream_slots import StreamSlots
from kodosumi.v1 import registry_pb2 as pb
from kodosumi.v1 import registry_pb2_grpc
from registryd import codec
from registryd.registry import Registry

Context = grpc.aio.ServicerContext[Any, Any]


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, registry: Registry, streams: StreamSlots | None = None) -> None:
        self.registry = registry
        # Open watch streams per identity (shared with WatchAuthState).
        self.streams = streams or StreamSlots(0)

    async def RegisterNode(
        self, request: pb.RegisterNodeRequest, context: Context
    ) -> pb.RegisterNodeResponse:
        node, lease = await self.registry.register(
            current_principal(), codec.announcement_from_pb(request)
        )
        return pb.RegisterNodeResponse(node=codec.node_to_pb(node), lease=codec.lease_to_pb(lease))

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        lease = await self.registry.heartbeat(current_principal(), codec.heartbeat_from_pb(request))
        return pb.HeartbeatResponse(
            lease=codec.lease_to_pb(lease),
            stats_window=codec.duration(self.registry.badges.window),
        )

    async def DeregisterNode(
        self, request: pb.DeregisterNodeRequest, context: Context
    ) -> pb.DeregisterNodeResponse:
        node = await self.registry.deregister(current_principal(), request.node_id, request.reason)
        return pb.DeregisterNodeResponse(node=codec.node_to_pb(node))

    async def GetNode(self, request: pb.GetNodeRequest, context: Context) -> pb.GetNodeResponse:
        node = await self.registry.get_node(request.node_id)
        return pb.GetNodeResponse(node=codec.node_to_pb(node))

    async def ListNodes(
        self, request: pb.ListNodesRequest, context: Context
    ) -> pb.ListNodesResponse:
        page = await self.registry.list_nodes(codec.node_query_from_pb(request), request.page_size)
        return pb.ListNodesResponse(
            nodes=[codec.node_to_pb(n) for n in page.nodes],
            next_page_token=codec.encode_page_token(page.next_after),
            revision=page.revision,
        )

    async def GetFlowOffer(
        self, request: pb.GetFlowOfferRequest, context: Context
    ) -> pb.GetFlowOfferResponse:
        offer = await self.registry.get_flow_offer(request.node_id, request.flow_name)
        return pb.GetFlowOfferResponse(offer=codec.offer_to_pb(offer))

    async def ListFlowOffers(
        self, request: pb.ListFlowOffersRequest, context: Context
    ) -> pb.ListFlowOffersResponse:
        page, after = await self.registry.list_flow_offers(
            codec.offer_query_from_pb(request),
            request.page_size,
            codec.decode_offer_token(request.page_token),
            codec.market_filter_from_pb(request, self.registry.badges.levels),
        )
        return pb.ListFlowOffersResponse(
            offers=[codec.offer_to_pb(o) for o in page.offers],
            revision=page.revision,
            next_page_token=codec.encode_offer_token(after),
        )

    async def WatchRegistry(
        self, request: pb.WatchRegistryRequest, context: Context
    ) -> AsyncIterator[pb.WatchRegistryResponse]:
        with self.streams.open(current_principal().id):
            watch = await self.registry.open_watch(request.after_revision)
            yield pb.WatchRegistryResponse(created=True, revision=watch.revision)
            async for changes in watch:
                yield pb.WatchRegistryResponse(
                    changes=[codec.change_to_pb(c) for c in changes],
                    revision=self.registry.revision,
                )
