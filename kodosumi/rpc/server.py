"""Build a daemon's grpc.aio server: mTLS (or explicit plaintext), the guard, health, reflection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from kodosumi.audit import AuditLog
from kodosumi.authz import Policy
from kodosumi.credentials import LiveTlsMaterial
from kodosumi.rpc.guard import Authenticator, GuardInterceptor
from kodosumi.rpc.tracing import ServerTracingInterceptor
from kodosumi.telemetry import tracing_active
from kodosumi.tls import TlsMaterial


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_receive_message_bytes: int = 4 * 1024 * 1024
    max_send_message_bytes: int = 64 * 1024 * 1024
    max_concurrent_streams: int = 1024
    keepalive_time_ms: int = 30_000
    keepalive_timeout_ms: int = 10_000
    # Clients may ping this often on idle streams; peer links ping every few seconds to
    # notice a dead peer (docs/operations.md, failure detection). Faster pings are refused
    # with GOAWAY "too_many_pings".
    min_client_ping_interval_ms: int = 1_000


def create_server(
    policy: Policy,
    authenticator: Authenticator,
    limits: ServerLimits = ServerLimits(),
    audit: AuditLog | None = None,
) -> grpc.aio.Server:
    options = [
        ("grpc.max_receive_message_length", limits.max_receive_message_bytes),
        ("grpc.max_send_message_length", limits.max_send_message_bytes),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
        ("grpc.keepalive_time_ms", limits.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", limits.keepalive_timeout_ms),
        # Let clients send keepalive pings on idle watch streams without being cut off.
        ("grpc.http2.min_ping_interval_without_data_ms", limits.min_client_ping_interval_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.so_reuseport", 0),
    ]
    # Tracing first: its span covers the guard, so refused calls are traced too. Daemons set
    # up telemetry before their server; without a tracer provider the interceptor would only
    # add a hop to every call, so it is left out.
    guard = GuardInterceptor(policy, authenticator, audit)
    interceptors: list[grpc.aio.ServerInterceptor] = (
        [ServerTracingInterceptor(), guard] if tracing_active() else [guard]
    )
    return grpc.aio.server(interceptors=interceptors, options=options)


def bind(server: grpc.aio.Server, address: str, tls: TlsMaterial | None) -> int:
    """Listen on `address` (`127.0.0.1:0` picks a free port); returns the bound port."""
    if tls is None:
        port = server.add_insecure_port(address)
    elif isinstance(tls, LiveTlsMaterial):
        # Rotating credentials: renewed certificates are used without a restart.
        port = server.add_secure_port(address, tls.source.server_credentials())
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key, tls.cert)], root_certificates=tls.ca_cert, require_client_auth=True
        )
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return port


class HealthServicer(health_aio.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1 with `List` (grpcio-health-checking leaves it NotImplementedError)."""

    async def List(
        self, request: health_pb2.HealthListRequest, context: Any
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._server_status.items()
            }
        )


def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Iterable[str]
) -> HealthServicer:
    """Serve grpc.health.v1 (overall and per service, all SERVING) and server reflection."""
    names = list(service_names)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    return health


async def set_serving(
    health: health_aio.HealthServicer, service_names: Iterable[str], up: bool
) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ["", *service_names]:
        await health.set(name, status)
