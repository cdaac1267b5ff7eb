"""The server interceptor every daemon runs: authenticate, authorize, decode, translate errors.

Identity comes from the mTLS handshake (the peer certificate's single SPIFFE URI SAN), never
from metadata. The authorization table fails closed. Requests are decoded here rather than by
gRPC so that malformed bytes become INVALID_ARGUMENT instead of an opaque INTERNAL; catalog
errors become their status with details, anything else is logged and answered as INTERNAL.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
from cryptography import x509
from google.protobuf.message import DecodeError

from kodosumi.authz import GrantResolver, Grants, Policy, Principal, RoleResolver, authorize
from kodosumi.errors import InvalidArgument, KodosumiError, Unauthenticated
from kodosumi.pki import is_ca_certificate, spiffe_id_of
from kodosumi.rpc.status import internal_status, to_grpc_status, to_rpc_status
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId

log = logging.getLogger(__name__)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("kodosumi_principal")


def current_principal() -> Principal:
    """The caller of the RPC being served (set by the guard before the servicer runs)."""
    return _principal.get()


class RevocationList:
    """Serials and identities whose certificates are no longer accepted.

    An identity maps to the time it was revoked: its certificates valid from then or before
    are refused, later ones (issued after a new enrollment) are accepted. None revokes every
    certificate of the identity.
    """

    def __init__(self) -> None:
        self.serials: frozenset[int] = frozenset()
        self.identities: Mapping[str, dt.datetime | None] = {}

    def replace(
        self,
        serials: Iterable[int],
        identities: Iterable[str] | Mapping[str, dt.datetime | None],
    ) -> None:
        revoked = (
            dict(identities) if isinstance(identities, Mapping) else dict.fromkeys(identities, None)
        )
        self.serials, self.identities = frozenset(serials), revoked

    def is_revoked(self, cert: x509.Certificate, identity: SpiffeId) -> bool:
        if cert.serial_number in self.serials:
            return True
        key = str(identity)
        if key not in self.identities:
            return False
        since = self.identities[key]
        return since is None or cert.not_valid_before_utc <= since


@functools.lru_cache(maxsize=1024)
def _parse_peer(pem: bytes) -> tuple[x509.Certificate, SpiffeId | None, str]:
    cert = x509.load_pem_x509_certificate(pem)
    if is_ca_certificate(cert):
        return cert, None, "a CA certificate cannot identify a caller"
    try:
        return cert, spiffe_id_of(cert), ""
    except InvalidSpiffeId as e:
        return cert, None, str(e)


class Authenticator:
    """Turns the TLS peer of a call into a Principal (or raises Unauthenticated)."""

    def __init__(
        self,
        *,
        trust_domain: str | None,
        roles: RoleResolver | GrantResolver,
        revocations: RevocationList | None = None,
        insecure_roles: frozenset[str] = frozenset(),
    ) -> None:
        self.trust_domain = trust_domain
        self.roles = roles
        self.revocations = revocations or RevocationList()
        self.insecure_roles = insecure_roles

    async def authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> Principal:
        if self.trust_domain is None:
            return Principal(None, self.insecure_roles)
        pems: Any = context.auth_context().get("x509_pem_cert")
        if not pems:
            raise Unauthenticated("the call carries no client certificate")
        cert, identity, problem = _parse_peer(pems[0])
        if identity is None:
            raise Unauthenticated(problem)
        if identity.trust_domain != self.trust_domain:
            raise Unauthenticated(
                f"identity {identity} is not of trust domain {self.trust_domain}",
                reason="FOREIGN_TRUST_DOMAIN",
            )
        if self.revocations.is_revoked(cert, identity):
            raise Unauthenticated(f"certificate of {identity} is revoked", reason="REVOKED")
        # Resolvers of the auth provider also know groups (GrantResolver); static ones roles.
        grants_of = getattr(self.roles, "grants_of", None)
        grants: Grants = (
            await grants_of(identity)
            if grants_of is not None
            else Grants(await self.roles.roles_of(identity))
        )
        return Principal(identity, grants.roles, grants.groups)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> None:
    if isinstance(error, KodosumiError):
        status = to_grpc_status(to_rpc_status(error))
    else:
        log.error("internal error while serving a call", exc_info=error)
        status = to_grpc_status(internal_status())
    await context.abort(status.code, status.details, status.trailing_metadata)


def _decoder(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any]:
    def decode(raw: bytes) -> Any:
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except (DecodeError, ValueError, RuntimeError) as e:
            raise InvalidArgument(f"malformed request: {e}", reason="MALFORMED_REQUEST") from None

    return decode


def passthrough(
    serializer: Callable[[Any], bytes] | None,
) -> Callable[[Any], bytes] | None:
    """The servicer's serializer, except that bytes go out as they are: a stream that built
    a response once for many callers (kodosumi/streams) yields the same bytes to each."""
    if serializer is None:
        return None
    encode = serializer

    def serialize(message: Any) -> bytes:
        if type(message) is bytes:
            return message
        return encode(message)

    return serialize


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: Policy, authenticator: Authenticator) -> None:
        self.policy = policy
        self.authenticator = authenticator
        # Guarded handlers by method, built once: the servicer's handler for a method is
        # the same object on every call, and wrapping it per call is measurable overhead.
        self._guarded: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        cached = self._guarded.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = self._wrap(method, handler)
        self._guarded[method] = (handler, guarded)
        return guarded

    async def _admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        principal = await self.authenticator.authenticate(context)
        authorize(self.policy, method, principal)
        _principal.set(principal)

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        decode = _decoder(handler.request_deserializer)
        serialize = passthrough(handler.response_serializer)
        admit = self._admit

        if handler.unary_unary:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    await admit(method, context)
                    return await inner_uu(decode(raw), context)
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await _abort(context, e)

            return grpc.unary_unary_rpc_method_handler(unary_unary, None, serialize)

        if handler.unary_stream:
            inner_us: Any = handler.unary_stream
            if inspect.isasyncgenfunction(inner_us):

                async def unary_stream(
                    raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
                ) -> AsyncIterator[Any]:
                    try:
                        await admit(method, context)
                        async for item in inner_us(decode(raw), context):
                            yield item
                    except (grpc.aio.AbortError, KeyboardInterrupt):
                        raise
                    except Exception as e:
                        await _abort(context, e)

                return grpc.unary_stream_rpc_method_handler(unary_stream, None, serialize)

            # Handlers that write with `context.write` instead of yielding (health Watch).
            async def unary_stream_writer(
                raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
            ) -> None:
                try:
                    await admit(method, context)
                    await inner_us(decode(raw), context)
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await _abort(context, e)

            return grpc.unary_stream_rpc_method_handler(unary_stream_writer, None, serialize)

        # Streaming requests (reflection, health watch variants): authenticate, then delegate.
        deserialize = handler.request_deserializer
        if handler.stream_unary:
            inner_su: Any = handler.stream_unary

            async def stream_unary(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                try:
                    await admit(method, context)
                    return await inner_su(requests, context)
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await _abort(context, e)

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserialize, serialize)

        inner_ss: Any = handler.stream_stream
        if inspect.isasyncgenfunction(inner_ss):

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                try:
                    await admit(method, context)
                    async for item in inner_ss(requests, context):
                        yield item
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await _abort(context, e)

            return grpc.stream_stream_rpc_method_handler(stream_stream, deserialize, serialize)

        async def stream_stream_writer(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> None:
            try:
                await admit(method, context)
                await inner_ss(requests, context)
            except (grpc.aio.AbortError, KeyboardInterrupt):
                raise
            except Exception as e:
                await _abort(context, e)

        return grpc.stream_stream_rpc_method_handler(stream_stream_writer, deserialize, serialize)
