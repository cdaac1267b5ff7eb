"""The optional HTTP listener for A2A discovery (`[a2a] http_listen`, off by default).

A2A defines discovery over HTTP: `GET /.well-known/agent-card.json` answers the node's
public card (flows without an allow-list), `GET /flows/<flow>/.well-known/agent-card.json`
a flow's card. Cards are signed, so their integrity does not depend on this plain listener;
everything else (tasks) is on the node's mTLS gRPC port. Starlette served by uvicorn, in the
node's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import uvicorn
from a2a.types import a2a_pb2 as a2a
from google.protobuf.json_format import MessageToDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/agent-card.json"
CardSource = Callable[[str], a2a.AgentCard | None]  # flow name ("" for the node) → card


def card_app(cards: CardSource) -> Starlette:
    def answer(flow: str) -> Response:
        card = cards(flow)
        if card is None:
            return JSONResponse({"error": f"no flow {flow!r}"}, status_code=404)
        return JSONResponse(
            MessageToDict(card),
            media_type="application/json",
            headers={"Cache-Control": "max-age=60"},
        )

    async def node(request: Request) -> Response:
        return answer("")

    async def flow(request: Request) -> Response:
        return answer(str(request.path_params["flow"]))

    return Starlette(
        routes=[
            Route(WELL_KNOWN, node, methods=["GET"]),
            Route("/flows/{flow}" + WELL_KNOWN, flow, methods=["GET"]),
        ]
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the node: the node, not uvicorn, handles the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CardListener:
    """uvicorn serving `card_app` on `host:port` (port 0 picks one; `port` tells which)."""

    def __init__(self, listen: str, cards: CardSource) -> None:
        host, _, port = listen.rpartition(":")
        self._config = uvicorn.Config(
            card_app(cards),
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _EmbeddedServer(self._config)
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                # uvicorn exits (SystemExit) when it cannot bind: the node reports it instead.
                with contextlib.suppress(BaseException):
                    self._task.result()
                raise OSError(f"cannot listen on {self._config.host}:{self._config.port}")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1])
        log.info("A2A agent cards on http://%s:%d%s", self._config.host, self.port, WELL_KNOWN)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._task, 5.0)
