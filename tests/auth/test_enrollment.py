"""Enrollment over the wire: one-time tokens, CSRs (the key stays with its owner), the CA
taken from the handshake by its fingerprint, and what the auth provider refuses."""

from __future__ import annotations

import dataclasses
import socket
import stat
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from kodosumi.authz import ADMIN, OPERATOR, USER
from kodosumi.csr import build_csr
from kodosumi.enrollment import EnrollmentError, EnrollmentToken, enroll, fetch_ca, fingerprint
from kodosumi.errors import InvalidArgument
from kodosumi.pki import cert_pem, generate_private_key, spiffe_id_of
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import auth_pb2, auth_pb2_grpc
from kodosumid.auth.identity import enrolled_files, join, node_credentials
from kodosumid.config import NodeConfig
from tests.auth.conftest import ADMIN as ADMIN_NAME
from tests.auth.conftest import DOMAIN, AuthRegistry, AuthRegistryFactory


async def _token(registry: AuthRegistry, name: str = "alice", **kwargs: object) -> str:
    admin = registry.auth(registry.admin())
    response = await admin.CreateUser(
        auth_pb2.CreateUserRequest(name=name, **kwargs),  # type: ignore[arg-type]
        timeout=5,
    )
    return str(response.enrollment_token)


async def test_a_user_enrolls_with_a_one_time_token(auth_registry: AuthRegistry) -> None:
    token = EnrollmentToken.decode(
        await _token(auth_registry, groups=["research"], roles=[auth_pb2.ROLE_OPERATOR])
    )
    assert token.identity == f"spiffe://{DOMAIN}/user/alice"
    assert token.ca_fingerprint == fingerprint(auth_registry.pki.ca.cert)
    assert token.registry_address == auth_registry.address

    enrolled = await enroll(token)
    assert str(enrolled.identity) == token.identity
    assert enrolled.material.ca_cert == cert_pem(auth_registry.pki.ca.cert)
    me = await auth_registry.auth(enrolled.material).WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
    assert me.identity == token.identity
    assert set(me.roles) == {USER, OPERATOR}
    assert list(me.groups) == ["research"]

    # The token is used up.
    with pytest.raises(EnrollmentError, match="UNAUTHENTICATED"):
        await enroll(token)


async def test_issued_certificates_are_short_lived(
    start_auth_registry: AuthRegistryFactory,
) -> None:
    registry = await start_auth_registry(certificate_lifetime=120.0)
    enrolled = await enroll(EnrollmentToken.decode(await _token(registry)))
    cert = x509.load_pem_x509_certificate(enrolled.material.cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    # 120 s from now, valid from 5 minutes before (clock skew).
    assert 400 <= lifetime.total_seconds() <= 430


async def test_the_key_never_leaves_the_enrollee(auth_registry: AuthRegistry) -> None:
    """The enrollee sends a CSR; the certificate it gets certifies its own public key."""
    token = EnrollmentToken.decode(await _token(auth_registry))
    key = generate_private_key()
    channel = grpc.aio.secure_channel(
        token.enroll_address,
        grpc.ssl_channel_credentials(cert_pem(auth_registry.pki.ca.cert)),
    )
    async with channel:
        stub = auth_pb2_grpc.EnrollmentServiceStub(channel)
        response = await stub.Enroll(
            auth_pb2.EnrollRequest(token=token.secret, csr=build_csr(key, token.spiffe_id)),
            timeout=5,
        )
    cert = x509.load_pem_x509_certificate(response.certificate)
    assert cert.public_key() == key.public_key()
    assert str(spiffe_id_of(cert)) == token.identity


async def test_a_csr_for_another_identity_is_refused_and_keeps_nothing(
    auth_registry: AuthRegistry,
) -> None:
    token = EnrollmentToken.decode(await _token(auth_registry))
    bad = dataclasses.replace(token, identity=f"spiffe://{DOMAIN}/user/{ADMIN_NAME}")
    with pytest.raises(EnrollmentError, match="INVALID_ARGUMENT"):
        await enroll(bad)
    assert await auth_registry.provider.store.list_certificates() == []


async def test_unknown_tokens_and_wrong_fingerprints_are_refused(
    auth_registry: AuthRegistry,
) -> None:
    token = EnrollmentToken.decode(await _token(auth_registry))
    with pytest.raises(EnrollmentError, match="UNAUTHENTICATED"):
        await enroll(dataclasses.replace(token, secret="guessed"))
    with pytest.raises(EnrollmentError, match="does not present the CA"):
        fetch_ca(token.enroll_address, "00" * 32)
    with pytest.raises(EnrollmentError, match="not a kodosumi enrollment token"):
        EnrollmentToken.decode("hello")
    # The real token still works afterwards.
    await enroll(token)


async def test_the_enrollment_port_serves_enroll_alone(auth_registry: AuthRegistry) -> None:
    token = EnrollmentToken.decode(await _token(auth_registry))
    credentials = grpc.ssl_channel_credentials(cert_pem(auth_registry.pki.ca.cert))
    async with grpc.aio.secure_channel(token.enroll_address, credentials) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListUsers(auth_pb2.ListUsersRequest(), timeout=5)
    # AuthService is not even served there.
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert auth_registry.spy.calls.count("ListUsers") == 0


async def test_a_node_enrolls_and_renews_its_certificate(auth_registry: AuthRegistry) -> None:
    material = await auth_registry.enroll_node("node-a")
    cert = x509.load_pem_x509_certificate(material.cert)
    assert spiffe_id_of(cert) == SpiffeId.node(DOMAIN, "node-a")
    auth = auth_registry.auth(material)
    key = generate_private_key()
    renewed = await auth.RenewCertificate(
        auth_pb2.RenewCertificateRequest(csr=build_csr(key, SpiffeId.node(DOMAIN, "node-a"))),
        timeout=5,
    )
    new = x509.load_pem_x509_certificate(renewed.certificate)
    assert spiffe_id_of(new) == SpiffeId.node(DOMAIN, "node-a")
    assert new.serial_number != cert.serial_number
    # A node gets flow identities under its own node id only.
    flow = await auth.IssueFlowCertificate(
        auth_pb2.IssueFlowCertificateRequest(
            flow="hello", csr=build_csr(key, SpiffeId.flow(DOMAIN, "node-a", "hello"))
        ),
        timeout=5,
    )
    assert flow.identity == f"spiffe://{DOMAIN}/flow/node-a/hello"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await auth.IssueFlowCertificate(
            auth_pb2.IssueFlowCertificateRequest(
                flow="hello", csr=build_csr(key, SpiffeId.flow(DOMAIN, "node-b", "hello"))
            ),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_renewal_cannot_change_the_identity(auth_registry: AuthRegistry) -> None:
    alice = auth_registry.auth(await auth_registry.enroll_user("alice"))
    key = generate_private_key()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await alice.RenewCertificate(
            auth_pb2.RenewCertificateRequest(csr=build_csr(key, SpiffeId.user(DOMAIN, "root"))),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_admins_manage_users_and_groups(auth_registry: AuthRegistry) -> None:
    admin = auth_registry.auth(auth_registry.admin())
    await admin.CreateUser(auth_pb2.CreateUserRequest(name="bob", groups=["ops"]), timeout=5)
    await admin.CreateGroup(auth_pb2.CreateGroupRequest(name="research"), timeout=5)
    updated = await admin.UpdateUser(
        auth_pb2.UpdateUserRequest(
            name="bob", roles=[auth_pb2.ROLE_ADMIN], groups=["research", "ops"]
        ),
        timeout=5,
    )
    assert set(updated.user.roles) == {auth_pb2.ROLE_USER, auth_pb2.ROLE_ADMIN}
    groups = (await admin.ListGroups(auth_pb2.ListGroupsRequest(), timeout=5)).groups
    assert {g.name: list(g.members) for g in groups} == {"ops": ["bob"], "research": ["bob"]}
    await admin.DeleteGroup(auth_pb2.DeleteGroupRequest(name="ops"), timeout=5)
    users = (await admin.ListUsers(auth_pb2.ListUsersRequest(), timeout=5)).users
    assert [(u.name, list(u.groups)) for u in users] == [("bob", ["research"])]
    grants = await auth_registry.provider.grants_of(SpiffeId.user(DOMAIN, "bob"))
    assert grants.roles == {USER, ADMIN} and grants.groups == {"research"}

    await admin.DeleteUser(auth_pb2.DeleteUserRequest(name="bob"), timeout=5)
    revoked = (
        await admin.ListRevocations(auth_pb2.ListRevocationsRequest(), timeout=5)
    ).revocations
    assert [r.identity for r in revoked] == [f"spiffe://{DOMAIN}/user/bob"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await admin.CreateEnrollmentToken(
            auth_pb2.CreateEnrollmentTokenRequest(kind=auth_pb2.IDENTITY_KIND_USER, name="bob"),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_join_enrolls_a_node_and_refuses_other_tokens(
    auth_registry: AuthRegistry, tmp_path: Path
) -> None:
    token = await auth_registry.node_token("node-a")
    with pytest.raises(InvalidArgument, match="not 'node-b'"):
        await join(NodeConfig(node_id="node-b", state_dir=tmp_path / "b"), token)
    user_token = await _token(auth_registry, "alice")
    with pytest.raises(InvalidArgument, match="not a node"):
        await join(NodeConfig(state_dir=tmp_path / "u"), user_token)

    config = await join(NodeConfig(state_dir=tmp_path / "a"), token)
    assert config.node_id == "node-a"
    assert config.registry_address == auth_registry.address
    assert (tmp_path / "a" / "node_id").read_text().strip() == "node-a"
    creds = node_credentials(config)
    assert str(creds.identity) == f"spiffe://{DOMAIN}/node/node-a"
    assert creds.rotating is not None and creds.auth_address == auth_registry.address
    key = enrolled_files(tmp_path / "a").key
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


async def test_a_busy_enrollment_port_leaves_the_registry_serving(
    start_auth_registry: AuthRegistryFactory,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        registry = await start_auth_registry(enroll_listen=f"127.0.0.1:{port}")
        admin = registry.auth(registry.admin())
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await admin.CreateUser(auth_pb2.CreateUserRequest(name="alice"), timeout=5)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    users = await admin.ListUsers(auth_pb2.ListUsersRequest(), timeout=5)
    assert list(users.users) == []  # nothing half-done
