"""Generated bad input against every RPC of every service (the node's own, A2A's, the
registry's), through real servers over mTLS:
the only statuses are the documented ones, never UNKNOWN or INTERNAL, and health stays
SERVING. (Issue 7, item 5.) The standard services (health, reflection) and streaming
requests are held to the same rule (issue 11, item 6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from a2a.types import a2a_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kodosumi.v1 import file_pb2, flow_pb2, node_pb2, quote_pb2, registry_pb2, usage_pb2
from tests.fuzz.strategies import invalid_utf8_requests, messages, raw_bytes
from tests.node.conftest import RunningNode

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# Every daemon serves these beside its own services.
STANDARD = [health_pb2, reflection_pb2]
EXAMPLES = 15
A2A_METADATA = (("a2a-version", "1.0"),)


def _methods(module: Any) -> list[tuple[str, Any]]:
    return [
        (f"/{service.full_name}/{method.name}", method)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


def _call(channel: grpc.Channel, path: str, method: Any, payload: bytes) -> grpc.StatusCode:
    identity: Callable[[bytes], bytes] = lambda b: b  # noqa: E731
    # A2A calls carry the protocol version (without it they would all stop at the check).
    metadata = A2A_METADATA if path.startswith("/lf.a2a.v1.") else None
    try:
        if method.client_streaming:
            # One request on the stream (reflection): the first answer or the status decides.
            call = channel.stream_stream(path, identity, identity)(iter([payload]), timeout=5)
            for _ in call:
                break
            call.cancel()
            return grpc.StatusCode.OK
        if method.server_streaming:
            stream = channel.unary_stream(path, identity, identity)(
                payload, timeout=5, metadata=metadata
            )
            for _ in stream:
                break  # one response is enough: it did not fail
            stream.cancel()
            return grpc.StatusCode.OK
        channel.unary_unary(path, identity, identity)(payload, timeout=5, metadata=metadata)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()  # type: ignore[attr-defined]
        # Cancelling a stream after its first response is our doing, not the server's.
        return grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED else code


def _fuzz(address: str, credentials: grpc.ChannelCredentials, modules: list[Any]) -> None:
    """Runs in a thread (blocking client); the servers keep serving on the test's loop."""
    with grpc.secure_channel(address, credentials) as channel:
        for path, method in [m for module in modules for m in _methods(module)]:
            for payload in invalid_utf8_requests(method.input_type):
                assert _call(channel, path, method, payload) == grpc.StatusCode.INVALID_ARGUMENT

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                # Reproducible in CI; `HYPOTHESIS_SEED`-free exploration is for `bench/`.
                derandomize=True,
            )
            @given(
                st.one_of(
                    messages(method.input_type).map(lambda m: m.SerializeToString()), raw_bytes
                )
            )
            def send(payload: bytes) -> None:
                code = _call(channel, path, method, payload)  # noqa: B023
                assert code in ALLOWED, f"{path} answered {code}"  # noqa: B023

            send()
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING


async def test_node_answers_generated_requests_with_documented_statuses(
    shared_node: RunningNode,
) -> None:
    assert shared_node.app.client_files is not None
    tls = shared_node.app.client_files.read()
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)
    await asyncio.to_thread(
        _fuzz,
        shared_node.app.address,
        credentials,
        [flow_pb2, node_pb2, a2a_pb2, file_pb2, usage_pb2, quote_pb2, *STANDARD],
    )


async def test_registry_answers_generated_requests_with_documented_statuses(
    start_registry: Any, pki: Any
) -> None:
    daemon = await start_registry()
    tls = pki.node("fuzz-node")
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)
    await asyncio.to_thread(_fuzz, daemon.address, credentials, [registry_pb2, *STANDARD])


def _raw(address: str, credentials: grpc.ChannelCredentials) -> dict[str, grpc.StatusCode]:
    identity: Callable[[bytes], bytes] = lambda b: b  # noqa: E731
    with grpc.secure_channel(address, credentials) as channel:
        codes = {}
        reflect = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        try:
            list(channel.stream_stream(reflect, identity, identity)(iter([b"\xff"]), timeout=5))
        except grpc.RpcError as e:
            codes["reflection"] = e.code()  # type: ignore[attr-defined]
        listed = channel.unary_unary(
            "/grpc.health.v1.Health/List",
            health_pb2.HealthListRequest.SerializeToString,
            health_pb2.HealthListResponse.FromString,
        )(health_pb2.HealthListRequest(), timeout=5)
        codes["list"] = grpc.StatusCode.OK if "" in listed.statuses else grpc.StatusCode.UNKNOWN
        return codes


async def test_standard_services_answer_bad_input_without_internal(
    start_registry: Any, pki: Any
) -> None:
    daemon = await start_registry()
    tls = pki.node("fuzz-node")
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)
    codes = await asyncio.to_thread(_raw, daemon.address, credentials)
    assert codes == {"reflection": grpc.StatusCode.INVALID_ARGUMENT, "list": grpc.StatusCode.OK}
