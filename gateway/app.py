"""Assembles a running gateway: the job store, node links, payment backends, the driver and
the ASGI application (FastAPI) with one MIP-003 router per service.

`Gateway.start()` reads every exposed flow's input schema from its node and turns it into
MIP-003 fields; a flow the gateway cannot describe (input_schema.py) or cannot find stops
the start with a message naming the service and the field.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from gateway.cards import card_json
from gateway.config import ConfigError, GatewayConfig, ServiceConfig
from gateway.driver import JobDriver, Service
from gateway.http_errors import BodyLimit, install
from gateway.input_schema import UnsupportedSchema, input_fields
from gateway.job_store import JobStore
from gateway.jobs import Job
from gateway.metrics import prometheus_text
from gateway.mip003 import service_router
from gateway.node_link import KodoclientError, NodeLink
from gateway.payments.backend import PaymentBackend
from gateway.payments.choose import backend_for, close_backends
from gateway.signing import Signer
from kodosumi.tls import TlsMaterial

__all__ = ["Gateway"]

log = logging.getLogger(__name__)

# How long a start waits for a node to answer with a flow's schema.
START_WAIT_SECONDS = 30.0
_AVAILABILITY_TTL = 2.0


class Gateway:
    def __init__(self, config: GatewayConfig, tls: TlsMaterial | None) -> None:
        self.config = config
        self.tls = tls
        self.store: JobStore | None = None
        self.links: dict[str, NodeLink] = {}
        self.backends: dict[str, PaymentBackend] = {}
        self.services: dict[str, Service] = {}
        self.driver: JobDriver | None = None
        self.signer = Signer(tls.key if tls else None, tls.cert if tls else b"")
        self._availability: dict[str, tuple[float, bool, str]] = {}

    def file_link(self, job: Job, file_id: str) -> str:
        base = self.config.public_url.rstrip("/")
        return f"{base}/{job.service}/files/{job.job_id}/{file_id}"

    async def start(self) -> FastAPI:
        self.store = await JobStore.open(self.config.database)
        for name, target in self.config.nodes.items():
            self.links[name] = NodeLink(
                name,
                target.address,
                self.tls,
                node_id=target.node_id,
                call_timeout=self.config.call_timeout_seconds,
            )
        for index, service in enumerate(self.config.services):
            self.services[service.path] = await self._service(index, service)
        self.driver = JobDriver(self.store, self.services, self.config, link_of_file=self.file_link)
        await self.driver.start()
        return self.app()

    async def _service(self, index: int, config: ServiceConfig) -> Service:
        link = self.links[config.node]
        deadline = time.monotonic() + START_WAIT_SECONDS
        while True:
            try:
                flow = await link.flow(config.flow)
                break
            except KodoclientError as e:
                if e.code.name != "UNAVAILABLE" or time.monotonic() > deadline:
                    raise ConfigError(
                        f"services[{index}] ({config.path}): flow {config.flow!r} on node "
                        f"{config.node!r} ({link.address}): {e}"
                    ) from None
                await asyncio.sleep(0.5)
        schema = NodeLink.schema_of(flow)
        try:
            fields = input_fields(schema)
        except UnsupportedSchema as e:
            raise ConfigError(
                f"services[{index}] ({config.path}): flow {config.flow!r}: {e.field}: {e.why}"
            ) from None
        backend = backend_for(self.config, config, self.backends, self.tls)
        return Service(config, link, backend, schema, fields, flow)

    async def availability(self, service: Service) -> tuple[bool, str]:
        cached = self._availability.get(service.config.path)
        if cached is not None and time.monotonic() - cached[0] < _AVAILABILITY_TTL:
            return cached[1], cached[2]
        ok, message = True, f"{service.config.name or service.config.flow} accepts jobs"
        try:
            flow = await service.link.client.get_flow(service.config.flow, call_timeout=2.0)
            if flow.unavailable_reason:
                ok, message = False, flow.unavailable_reason
        except KodoclientError as e:
            ok, message = False, f"node {service.config.node!r} unreachable ({e.code.name})"
        if ok and not await service.backend.healthy():
            ok, message = False, f"payment backend {service.backend.name!r} unreachable"
        self._availability[service.config.path] = (time.monotonic(), ok, message)
        return ok, message

    def app(self) -> FastAPI:
        assert self.store is not None and self.driver is not None
        app = FastAPI(
            title="kodogate",
            description="Kodosumi flows as MIP-003 agentic services",
            version="1",
        )
        install(app)
        for service in self.services.values():
            app.include_router(
                service_router(
                    service,
                    self.store,
                    self.driver,
                    needs_masumi_ids=service.backend.name == "masumi",
                    availability=self.availability,
                    sign=self.signer.sign,
                    purchasers=self.config.ledger.purchasers,
                )
            )
        store = self.store

        @app.get("/healthz")
        async def healthz() -> dict[str, Any]:
            counts = await store.counts()
            return {"status": "ok", "services": sorted(self.services), "jobs": counts}

        @app.get("/metrics", response_class=PlainTextResponse)
        async def metrics() -> str:
            return prometheus_text(await store.counts())

        @app.get("/.well-known/agent-card.json")
        async def agent_card() -> dict[str, Any]:
            return card_json(self.config, self.services, self.tls)

        for path in self.services:
            app.add_api_route(
                f"/{path}/.well-known/agent-card.json",
                self._service_card(path),
                methods=["GET"],
                name=f"agent card of {path}",
            )

        @app.get("/.well-known/kodogate-cert.pem")
        async def certificate() -> Response:
            return Response(self.signer.cert_pem, media_type="application/x-pem-file")

        return app  # type: ignore[no-any-return]

    def _service_card(self, path: str) -> Any:
        async def card() -> dict[str, Any]:
            return card_json(self.config, self.services, self.tls, path)

        return card

    def asgi(self, app: FastAPI) -> BodyLimit:
        return BodyLimit(app, self.config.max_body_bytes)

    async def stop(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
        for link in self.links.values():
            await link.close()
        await close_backends(self.backends)
        if self.store is not None:
            await self.store.close()
