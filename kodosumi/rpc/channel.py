"""Client channels: mTLS with the caller's credentials, keepalive for long watch streams, and
client spans carrying the W3C trace context when the process traces."""

from __future__ import annotations

import grpc

from kodosumi.credentials import LiveTlsMaterial
from kodosumi.rpc.rotating_channel import RotatingChannel
from kodosumi.telemetry import client_interceptors
from kodosumi.tls import TlsMaterial

CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 1),
]


def with_options(overrides: list[tuple[str, int | str]]) -> list[tuple[str, int | str]]:
    """CHANNEL_OPTIONS with `overrides` replacing options of the same name (gRPC takes one
    value per name, so none may appear twice)."""
    merged = dict(CHANNEL_OPTIONS)
    merged.update(dict(overrides))
    return list(merged.items())


def open_channel(
    target: str,
    tls: TlsMaterial | None,
    options: list[tuple[str, int | str]] | None = None,
) -> grpc.aio.Channel:
    """An aio channel to `target`; plaintext only when `tls` is None (an explicit --insecure).
    `options` replace the defaults of the same name (peer links detect dead peers faster).

    Rotating credentials (`kodosumi.credentials.LiveTlsMaterial`) give a channel whose new
    calls always use the current certificate.
    """
    chosen = with_options(options or [])
    if tls is None:
        return grpc.aio.insecure_channel(target, options=chosen, interceptors=client_interceptors())
    if isinstance(tls, LiveTlsMaterial):
        return RotatingChannel(target, tls.source, chosen)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.aio.secure_channel(
        target, credentials, options=chosen, interceptors=client_interceptors()
    )
