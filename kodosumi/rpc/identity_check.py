"""Turn a refused server identity into an error that names both identities.

The check itself happens in the TLS handshake (`kodosumi.server_identity`); when it fails,
gRPC reports only "Hostname Verification Check failed". These client interceptors catch that
on a call's connection, look at the certificate the server presents (one extra TLS handshake
with the same trust anchor and client certificate) and fail the call with UNAVAILABLE, reason
SERVER_IDENTITY_MISMATCH, naming what was expected and what answered.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

from kodosumi.errors import ERROR_DOMAIN
from kodosumi.pki import spiffe_id_of
from kodosumi.server_identity import ServerExpectation
from kodosumi.spiffe import InvalidSpiffeId
from kodosumi.tls import TlsMaterial

REASON = "SERVER_IDENTITY_MISMATCH"
_MARKER = "Hostname Verification Check failed"
_PROBE_TIMEOUT = 3.0


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.removeprefix("ipv4:").removeprefix("dns:").rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def presented_identity(target: str, material: TlsMaterial) -> str:
    """The SPIFFE id (or a description) of the certificate the server at `target` presents."""
    host, port = _split(target)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the point is to read whatever it presents
    context.load_verify_locations(cadata=material.ca_cert.decode())
    with tempfile.TemporaryDirectory() as folder:
        cert, key = Path(folder) / "c.pem", Path(folder) / "k.pem"
        cert.write_bytes(material.cert)
        key.touch(0o600)
        key.write_bytes(material.key)
        context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        return "a server without a certificate"
    try:
        return str(spiffe_id_of(x509.load_der_x509_certificate(der)))
    except InvalidSpiffeId as e:
        return f"a certificate without a usable identity ({e})"


def mismatch_error(
    target: str, material: TlsMaterial, expected: str, error: grpc.aio.AioRpcError
) -> grpc.aio.AioRpcError:
    try:
        actual = presented_identity(target, material)
    except (OSError, ValueError) as e:
        actual = f"unknown (could not read its certificate: {e})"
    message = f"the server at {target} is {actual}, expected {expected}"
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        _trailers(message),
        details=message,
        debug_error_string=error.debug_error_string(),
    )


def _trailers(message: str) -> grpc.aio.Metadata:
    from google.protobuf import any_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=REASON, domain=ERROR_DOMAIN))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
    return grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))


def is_identity_refusal(error: grpc.RpcError) -> bool:
    details = error.details() if hasattr(error, "details") else ""
    return error.code() == grpc.StatusCode.UNAVAILABLE and _MARKER in (details or "")


class _Explain:
    def __init__(
        self, target: str, material: Callable[[], TlsMaterial], expected: ServerExpectation
    ) -> None:
        self.target = target
        self.material = material
        self.expected = expected
        self.trust_domain = ""

    async def explain(self, call: Any) -> Any:
        try:
            await call.wait_for_connection()
        except grpc.aio.AioRpcError as e:
            if not is_identity_refusal(e):
                raise
            expected = self.expected.describe(self.trust_domain)
            raise await asyncio.to_thread(
                mismatch_error, self.target, self.material(), expected, e
            ) from None
        return call


class ExplainUnaryUnary(_Explain, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return await self.explain(await continuation(client_call_details, request))


class ExplainUnaryStream(_Explain, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: Any, request: Any
    ) -> Any:
        return await self.explain(await continuation(client_call_details, request))


def explaining_interceptors(
    target: str,
    material: Callable[[], TlsMaterial],
    expected: ServerExpectation,
    trust_domain: str,
) -> list[grpc.aio.ClientInterceptor]:
    interceptors: list[grpc.aio.ClientInterceptor] = []
    for cls in (ExplainUnaryUnary, ExplainUnaryStream):
        interceptor = cls(target, material, expected)
        interceptor.trust_domain = trust_domain
        interceptors.append(interceptor)
    return interceptors
