"""The security matrix against a real registry (and its auth provider) over mTLS on loopback.

Every case asserts the outcome the client sees AND that no servicer ran (a spy records every
servicer call) — or, where the rule is the domain's (a node writes only its own entry), that
nothing changed. Rejections in the TLS handshake reach the client as UNAVAILABLE (that is how
grpc reports them); identities the guard refuses are UNAUTHENTICATED; valid identities without
the right are PERMISSION_DENIED.

The node's half of the matrix (a user reading another user's execution) is in
`test_node_auth.py`, with a real node.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import grpc
import pytest

from kodosumi.pki import CertificateAuthority, cert_pem, create_ca, key_pem
from kodosumi.rpc.status import details_of
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, registry_pb2, registry_pb2_grpc
from tests.auth.certs import ca_as_leaf, crafted
from tests.auth.conftest import DOMAIN, AuthRegistry
from tests.registry.conftest import Pki
from tests.registry.helpers import register_request


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def _credentials(tls: TlsMaterial) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(tls.ca_cert, tls.key, tls.cert)


async def _list_nodes(registry: AuthRegistry, credentials: grpc.ChannelCredentials) -> Exception:
    async with grpc.aio.secure_channel(registry.address, credentials) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        return await _refused(stub.ListNodes(registry_pb2.ListNodesRequest(), timeout=5))


# -- rejected in the TLS handshake: UNAVAILABLE ---------------------------------------------------


def _wrong_ca(pki: Pki) -> grpc.ChannelCredentials:
    other = CertificateAuthority(*create_ca(DOMAIN))
    cert, key = other.issue(SpiffeId.user(DOMAIN, "mallory"))
    return _credentials(TlsMaterial(cert_pem(pki.ca.cert), cert_pem(cert), key_pem(key)))


def _expired(pki: Pki) -> grpc.ChannelCredentials:
    now = _now()
    return _credentials(
        crafted(
            pki.ca,
            [f"spiffe://{DOMAIN}/user/alice"],
            not_before=now - dt.timedelta(days=2),
            not_after=now - dt.timedelta(days=1),
        )
    )


def _not_yet_valid(pki: Pki) -> grpc.ChannelCredentials:
    now = _now()
    return _credentials(
        crafted(
            pki.ca,
            [f"spiffe://{DOMAIN}/user/alice"],
            not_before=now + dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=2),
        )
    )


def _no_client_certificate(pki: Pki) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=cert_pem(pki.ca.cert))


@pytest.mark.parametrize(
    "make",
    [_wrong_ca, _expired, _not_yet_valid, _no_client_certificate],
    ids=["wrong-ca", "expired", "not-yet-valid", "no-client-cert"],
)
async def test_the_handshake_rejects(
    auth_registry: AuthRegistry, make: Callable[[Pki], grpc.ChannelCredentials]
) -> None:
    error = await _list_nodes(auth_registry, make(auth_registry.pki))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert auth_registry.spy.calls == []


# -- refused by the guard: UNAUTHENTICATED -------------------------------------------------------


def _two_uri_sans(pki: Pki) -> TlsMaterial:
    return crafted(pki.ca, [f"spiffe://{DOMAIN}/user/alice", f"spiffe://{DOMAIN}/user/bob"])


def _ca_as_leaf(pki: Pki) -> TlsMaterial:
    return ca_as_leaf(pki.ca)


def _non_spiffe_uri(pki: Pki) -> TlsMaterial:
    return crafted(pki.ca, ["https://example.com/user/alice"])


def _foreign_trust_domain(pki: Pki) -> TlsMaterial:
    return crafted(pki.ca, ["spiffe://elsewhere.example/user/alice"])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_two_uri_sans, "UNAUTHENTICATED"),
        (_ca_as_leaf, "UNAUTHENTICATED"),
        (_non_spiffe_uri, "UNAUTHENTICATED"),
        (_foreign_trust_domain, "FOREIGN_TRUST_DOMAIN"),
    ],
    ids=["two-uri-sans", "ca-as-leaf", "non-spiffe-uri", "foreign-trust-domain"],
)
async def test_the_guard_refuses_the_identity(
    auth_registry: AuthRegistry, make: Callable[[Pki], TlsMaterial], reason: str
) -> None:
    error = await _list_nodes(auth_registry, _credentials(make(auth_registry.pki)))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(error)[0] == reason
    assert auth_registry.spy.calls == []


async def test_a_revoked_serial_is_refused(auth_registry: AuthRegistry) -> None:
    alice = await auth_registry.enroll_user("alice")
    me = await auth_registry.auth(alice).WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
    auth_registry.spy.calls.clear()

    admin = auth_registry.auth(auth_registry.admin())
    await admin.Revoke(auth_pb2.RevokeRequest(serial=me.serial, reason="laptop lost"), timeout=5)
    auth_registry.spy.calls.clear()

    error = await _list_nodes(auth_registry, _credentials(alice))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert details_of(error)[0] == "REVOKED"
    assert auth_registry.spy.calls == []


# -- valid identity, no right: PERMISSION_DENIED -------------------------------------------------


async def test_a_user_may_not_write_the_registry(auth_registry: AuthRegistry) -> None:
    alice = auth_registry.registry(await auth_registry.enroll_user("alice"))
    error = await _refused(alice.RegisterNode(register_request("node-a"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert auth_registry.spy.calls == []


async def test_a_user_may_not_call_admin_methods(auth_registry: AuthRegistry) -> None:
    alice = auth_registry.auth(await auth_registry.enroll_user("alice"))
    error = await _refused(alice.CreateUser(auth_pb2.CreateUserRequest(name="eve"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert auth_registry.spy.calls == []
    assert [u.name for u in await auth_registry.provider.list_users()] == ["alice"]


async def test_an_operator_may_not_call_admin_methods(auth_registry: AuthRegistry) -> None:
    olga = auth_registry.auth(await auth_registry.enroll_user("olga", roles=("operator",)))
    error = await _refused(olga.ListUsers(auth_pb2.ListUsersRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert auth_registry.spy.calls == []


async def test_a_node_may_not_write_another_nodes_entry(auth_registry: AuthRegistry) -> None:
    node_a = auth_registry.registry(await auth_registry.enroll_node("node-a"))
    error = await _refused(node_a.RegisterNode(register_request("node-b"), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details_of(error)[0] == "NODE_IDENTITY_MISMATCH"
    # The rule is the domain's (it needs the request's node id): nothing was written.
    assert (await auth_registry.daemon.registry.store.get_node("node-b")) is None
    assert await auth_registry.daemon.registry.store.revision() == 0
    # Its own entry it may write.
    await node_a.RegisterNode(register_request("node-a"), timeout=5)


async def test_a_flow_identity_may_not_call_the_registry(auth_registry: AuthRegistry) -> None:
    flow = auth_registry.pki.flow("node-a", "hello")
    error = await _list_nodes(auth_registry, _credentials(flow))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert auth_registry.spy.calls == []


async def test_a_flow_identity_may_not_call_the_auth_provider(auth_registry: AuthRegistry) -> None:
    flow = auth_registry.auth(auth_registry.pki.flow("node-a", "hello"))
    error = await _refused(flow.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert auth_registry.spy.calls == []
