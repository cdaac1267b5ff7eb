"""The server interceptor every daemon runs: authenticate, authorize, decode, translate errors.

Identity comes from the mTLS handshake (the peer certificate's single SPIFFE URI SAN), never
from metadata. The authorization table fails closed. Requests are decoded here rather than by
gRPC so that malformed bytes become INVALID_ARGUMENT instead of an opaque INTERNAL; catalog
errors become their status with details, anything else is logged and answered as INTERNAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from cryptography import x509
from google.protobuf.message import DecodeError

from kodosumi import audit as audit_log
from kodosumi.audit import AuditLog
from kodosumi.authz import (
    PRIVILEGED_ROLES,
    GrantResolver,
    Policy,
    Principal,
    RoleResolver,
    authorize,
    principal_of,
)
from kodosumi.errors import InvalidArgument, KodosumiError, Unauthenticated
from kodosumi.pki import is_ca_certificate, spiffe_id_of
from kodosumi.revocations import RevocationList
from kodosumi.rpc.revocation_watch import UNWATCHED, RevocationWatch, Unwatched
from kodosumi.rpc.status import internal_status, to_grpc_status, to_rpc_status
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId

log = logging.getLogger(__name__)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("kodosumi_principal")


def current_principal() -> Principal:
    """The caller of the RPC being served (set by the guard before the servicer runs)."""
    return _principal.get()


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

    def peer_of(
        self, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[x509.Certificate, SpiffeId] | None:
        """The certificate and identity of an authenticated caller (None without mTLS)."""
        if self.trust_domain is None:
            return None
        pems: Any = context.auth_context().get("x509_pem_cert")
        if not pems:
            return None
        cert, identity, _ = _parse_peer(pems[0])
        return None if identity is None else (cert, identity)

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
        return await principal_of(self.roles, identity)

    async def principal_of(self, identity: str) -> Principal:
        """Roles and groups of `identity` (a SPIFFE id) as if it called: whose quotas a
        launch spends when that is not the caller's."""
        return await principal_of(self.roles, SpiffeId.parse(identity))


# Refusals the audit log records (issue 11: who was turned away, and why).
_AUDITED = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED"})


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: BaseException) -> None:
    if isinstance(error, KodosumiError):
        status = to_grpc_status(to_rpc_status(error))
    elif isinstance(error, NotImplementedError):
        # Standard servicers leave methods out this way (grpc.health.v1.Health/List).
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "method not implemented")
        return
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
    def __init__(
        self, policy: Policy, authenticator: Authenticator, audit: AuditLog | None = None
    ) -> None:
        self.policy = policy
        self.authenticator = authenticator
        self.audit = audit
        # Methods only operators and admins may call: each call served is an admin action.
        self.admin_methods = frozenset(
            method
            for method, rule in policy.items()
            if rule.roles and rule.roles <= PRIVILEGED_ROLES
        )
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
        audit_log.use(self.audit)
        principal = await self.authenticator.authenticate(context)
        authorize(self.policy, method, principal)
        _principal.set(principal)

    def _who(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        principal = _principal.get(None)
        if principal is not None and principal.identity is not None:
            return principal.id
        peer = self.authenticator.peer_of(context)
        return str(peer[1]) if peer is not None else f"peer:{context.peer()}"

    async def _fail(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], error: BaseException
    ) -> None:
        """Answer a failed call, and write a refusal to the audit log."""
        if self.audit is not None and isinstance(error, KodosumiError) and error.status in _AUDITED:
            self.audit.refused(
                self._who(context),
                method,
                error.status,
                error.reason,
                peer=context.peer(),
                detail=error.message,
            )
        await _abort(context, error)

    def _served(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self.audit is not None and method in self.admin_methods:
            self.audit.admin(self._who(context), method, peer=context.peer())

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        decode = _decoder(handler.request_deserializer)
        serialize = passthrough(handler.response_serializer)
        admit = self._admit
        streaming = self._streaming
        fail = self._fail
        served = self._served

        if handler.unary_unary:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    await admit(method, context)
                    response = await inner_uu(decode(raw), context)
                    served(method, context)
                    return response
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await fail(method, context, e)

            return grpc.unary_unary_rpc_method_handler(unary_unary, None, serialize)

        if handler.unary_stream:
            inner_us: Any = handler.unary_stream
            if inspect.isasyncgenfunction(inner_us):

                async def unary_stream(
                    raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
                ) -> AsyncIterator[Any]:
                    async with (
                        streaming(method, context) as watch,
                        contextlib.aclosing(inner_us(decode(raw), context)) as items,
                    ):
                        # `async for`, written out: a revocation may cancel only the wait.
                        following = items.__anext__
                        while True:
                            watch.enter()
                            try:
                                item = await following()
                            except StopAsyncIteration:
                                break
                            finally:
                                watch.leave()
                            yield item

                return grpc.unary_stream_rpc_method_handler(unary_stream, None, serialize)

            # Handlers that write with `context.write` (health Watch).
            async def unary_stream_writer(
                raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
            ) -> None:
                async with streaming(method, context):
                    await inner_us(decode(raw), context)

            return grpc.unary_stream_rpc_method_handler(unary_stream_writer, None, serialize)

        # Streaming requests (reflection): decoded here too, so that malformed bytes are
        # INVALID_ARGUMENT naming the method rather than grpc's opaque INTERNAL.
        async def decoded(requests: AsyncIterator[bytes]) -> AsyncIterator[Any]:
            async for raw in requests:
                yield decode(raw)

        if handler.stream_unary:
            inner_su: Any = handler.stream_unary

            async def stream_unary(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
            ) -> Any:
                try:
                    await admit(method, context)
                    return await inner_su(decoded(requests), context)
                except (grpc.aio.AbortError, KeyboardInterrupt):
                    raise
                except Exception as e:
                    await fail(method, context, e)

            return grpc.stream_unary_rpc_method_handler(stream_unary, None, serialize)

        inner_ss: Any = handler.stream_stream
        if inspect.isasyncgenfunction(inner_ss):

            async def stream_stream(
                requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                async with (
                    streaming(method, context) as watch,
                    contextlib.aclosing(inner_ss(decoded(requests), context)) as items,
                ):
                    following = items.__anext__
                    while True:
                        watch.enter()
                        try:
                            item = await following()
                        except StopAsyncIteration:
                            break
                        finally:
                            watch.leave()
                        yield item

            return grpc.stream_stream_rpc_method_handler(stream_stream, None, serialize)

        async def stream_stream_writer(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
        ) -> None:
            async with streaming(method, context):
                await inner_ss(decoded(requests), context)

        return grpc.stream_stream_rpc_method_handler(stream_stream_writer, None, serialize)

    @contextlib.asynccontextmanager
    async def _streaming(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[RevocationWatch | Unwatched]:
        """Admit a streaming call, then serve it until it ends, fails, or its caller is revoked.

        A revocation cancels the serving task while it waits inside the stream (for events,
        the common case): the call ends UNAUTHENTICATED/REVOKED. It is never cancelled while
        gRPC sends a response (gRPC takes such a cancel as the client's and the call hangs,
        never ended); a stream caught sending ends before its next response instead
        (`enter`/`leave`), e.g. the auth state announcing that very revocation.
        """
        watch: RevocationWatch | None = None
        try:
            await self._admit(method, context)
            peer = self.authenticator.peer_of(context)
            if peer is not None:
                watch = RevocationWatch(self.authenticator.revocations, *peer)
            yield watch if watch is not None else UNWATCHED
        except (grpc.aio.AbortError, KeyboardInterrupt):
            raise
        except asyncio.CancelledError:
            if watch is None or not watch.revoked:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            await self._fail(
                method,
                context,
                Unauthenticated(
                    f"certificate of {watch.identity} was revoked while the stream was open",
                    reason="REVOKED",
                ),
            )
        except Exception as e:
            task = asyncio.current_task()
            if watch is not None and watch.revoked and task is not None and task.cancelling():
                task.uncancel()  # the revocation's cancel became this REVOKED (`leave`)
            await self._fail(method, context, e)
        finally:
            if watch is not None:
                watch.close()
