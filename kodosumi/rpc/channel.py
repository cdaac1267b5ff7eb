"""Client channels: mTLS with the caller's credentials, the server's identity checked in the
handshake, keepalive for long watch streams, and client spans carrying the W3C trace context
when the process traces.

Every client states whom it expects (`ServerExpectation`: a node or a registry, and its id
when known). The handshake then checks the reserved name of that identity in the server's
certificate instead of the dialled host name (`kodosumi.server_identity`), so a server with
a valid certificate of the same CA but another identity or kind is refused: UNAVAILABLE,
reason SERVER_IDENTITY_MISMATCH, naming both identities.
"""

from __future__ import annotations

import functools
from typing import Any

import grpc

from kodosumi.credentials import LiveTlsMaterial, RotatingCredentials
from kodosumi.rpc.identity_check import explaining_interceptors
from kodosumi.rpc.rotating_channel import Options, RotatingChannel
from kodosumi.server_identity import ServerExpectation, trust_domain_of_ca
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


def identity_options(
    tls: TlsMaterial, expect: ServerExpectation, options: Options | None = None
) -> Options:
    """Channel options (defaults, `options` replacing those of the same name) that make the
    handshake check `expect` (sync channels use them too)."""
    name = expect.check_name(trust_domain_of_ca(tls.ca_cert))
    return with_options([*(options or []), ("grpc.ssl_target_name_override", name)])


def _rotating_factory(
    expect: ServerExpectation,
    trust_domain: str,
    target: str,
    credentials: RotatingCredentials,
    options: Options,
) -> Any:
    material = credentials.material
    creds = grpc.ssl_channel_credentials(
        root_certificates=material.ca_cert,
        private_key=material.key,
        certificate_chain=material.cert,
    )
    interceptors = [
        *(client_interceptors() or []),
        *explaining_interceptors(target, lambda: credentials.material, expect, trust_domain),
    ]
    return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)


def open_channel(
    target: str,
    tls: TlsMaterial | None,
    options: Options | None = None,
    *,
    expect: ServerExpectation,
) -> grpc.aio.Channel:
    """An aio channel to `target` whose server must be `expect`; plaintext (and no identity
    check: there is none to check) only when `tls` is None (an explicit --insecure).
    `options` replace the defaults of the same name (peer links detect dead peers faster).

    Rotating credentials (`kodosumi.credentials.LiveTlsMaterial`) give a channel whose new
    calls always use the current certificate.
    """
    if tls is None:
        return grpc.aio.insecure_channel(
            target, options=with_options(options or []), interceptors=client_interceptors()
        )
    trust_domain = trust_domain_of_ca(tls.ca_cert)
    options = identity_options(tls, expect, options)
    if isinstance(tls, LiveTlsMaterial):
        factory = functools.partial(_rotating_factory, expect, trust_domain)
        return RotatingChannel(target, tls.source, options, factory=factory)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert, private_key=tls.key, certificate_chain=tls.cert
    )
    interceptors = [
        *(client_interceptors() or []),
        *explaining_interceptors(target, lambda: tls, expect, trust_domain),
    ]
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)


def node_channel(target: str, tls: TlsMaterial | None, node_id: str = "") -> grpc.aio.Channel:
    """A channel to a node (node `node_id` when given): the short form for SDK users."""
    return open_channel(target, tls, expect=ServerExpectation.node(node_id))


def open_sync_channel(
    target: str, tls: TlsMaterial | None, *, expect: ServerExpectation
) -> grpc.Channel:
    """A blocking channel like `open_channel`'s (the current credentials of rotating ones).

    For client streams that a server may end early (an upload refused at its header): the
    asyncio client reports such a call as INTERNAL instead of the server's status
    (grpc/grpc#36066), the blocking one reports the server's."""
    if tls is None:
        return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    if isinstance(tls, LiveTlsMaterial):
        tls = tls.source.material
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_cert, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.secure_channel(target, credentials, options=identity_options(tls, expect))
