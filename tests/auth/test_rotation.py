"""Certificate rotation without restarts: a server renews its certificate, new connections see
the new one, streams opened before survive; a client's channel dials with its renewed
certificate while its running streams go on."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import grpc
from cryptography import x509

from kodosumi.credentials import CertificateRenewer, IssuedCertificate, RotatingCredentials
from kodosumi.rpc.channel import CHANNEL_OPTIONS, open_channel
from kodosumi.rpc.rotating_channel import RotatingChannel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import auth_pb2, auth_pb2_grpc, registry_pb2
from tests.auth.conftest import AuthRegistry
from tests.registry.helpers import eventually, register_request


def _served_serial(address: str) -> int:
    """The serial of the certificate a server presents to a new connection."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_the_registry_serves_its_renewed_certificate_and_streams_survive(
    auth_registry: AuthRegistry,
) -> None:
    auth = auth_registry.daemon.auth
    assert auth is not None
    before = auth.credentials.certificate.serial_number
    assert await asyncio.to_thread(_served_serial, auth_registry.address) == before

    node = await auth_registry.enroll_node("node-a")
    reader = auth_registry.registry(auth_registry.pki.user("alice"))
    watch = reader.WatchRegistry(registry_pb2.WatchRegistryRequest(after_revision=0))
    first = await watch.read()
    assert first.created

    await auth.renewer.renew_now()
    after = auth.credentials.certificate.serial_number
    assert after != before
    assert await asyncio.to_thread(_served_serial, auth_registry.address) == after
    # The enrollment port follows the same credentials.
    enroll_address = auth.provider.settings.enroll_address
    assert await asyncio.to_thread(_served_serial, enroll_address) == after

    # New connections work with the new certificate ...
    writer = auth_registry.registry(node)
    await writer.RegisterNode(register_request("node-a"), timeout=5)
    # ... and the stream opened before the renewal still delivers.
    change = await asyncio.wait_for(watch.read(), 10)
    assert change.changes and change.changes[0].node_id == "node-a"
    watch.cancel()


async def test_a_client_channel_dials_with_its_renewed_certificate(
    auth_registry: AuthRegistry,
) -> None:
    material = await auth_registry.enroll_node("node-b")
    credentials = RotatingCredentials(material)
    channel = open_channel(
        auth_registry.address, credentials.live(), expect=ServerExpectation.registry()
    )
    stub: Any = auth_pb2_grpc.AuthServiceStub(channel)
    try:
        me = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
        assert int(me.serial, 16) == credentials.certificate.serial_number
        stream = stub.WatchAuthState(auth_pb2.WatchAuthStateRequest())
        generation = (await stream.read()).generation

        async def renew(csr: bytes) -> IssuedCertificate:
            response = await stub.RenewCertificate(
                auth_pb2.RenewCertificateRequest(csr=csr), timeout=5
            )
            return IssuedCertificate(response.certificate, response.ca_certificate)

        old = credentials.certificate.serial_number
        await CertificateRenewer(credentials, renew).renew_now()
        assert credentials.generation == 2
        assert credentials.certificate.serial_number != old

        me = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
        assert int(me.serial, 16) == credentials.certificate.serial_number
        assert me.identity.endswith("/node/node-b")

        # The stream opened on the old certificate goes on: it sees the next change.
        await auth_registry.enroll_user("carol")
        later = await asyncio.wait_for(stream.read(), 10)
        assert later.generation > generation
        stream.cancel()
    finally:
        await channel.close()


async def test_a_revoked_old_certificate_does_not_hit_the_renewed_one(
    auth_registry: AuthRegistry,
) -> None:
    """Revoking the serial of a replaced certificate leaves its successor working."""
    material = await auth_registry.enroll_node("node-c")
    credentials = RotatingCredentials(material)
    channel = open_channel(
        auth_registry.address, credentials.live(), expect=ServerExpectation.registry()
    )
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    try:

        async def renew(csr: bytes) -> IssuedCertificate:
            response = await stub.RenewCertificate(
                auth_pb2.RenewCertificateRequest(csr=csr), timeout=5
            )
            return IssuedCertificate(response.certificate, response.ca_certificate)

        old = format(credentials.certificate.serial_number, "x")
        await CertificateRenewer(credentials, renew).renew_now()
        admin = auth_registry.auth(auth_registry.admin())
        await admin.Revoke(auth_pb2.RevokeRequest(serial=old), timeout=5)
        me = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
        assert me.identity.endswith("/node/node-c")
    finally:
        await channel.close()


async def test_the_renewer_renews_when_two_thirds_have_passed(
    auth_registry: AuthRegistry,
) -> None:
    material = await auth_registry.enroll_node("node-d")
    credentials = RotatingCredentials(material)
    cert = credentials.certificate
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    clock = [start]
    slept: list[float] = []
    renewed = asyncio.Event()

    async def renew(csr: bytes) -> IssuedCertificate:
        renewed.set()
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
        )

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] = end  # time flies
        await asyncio.sleep(0)

    renewer = CertificateRenewer(credentials, renew, now=lambda: clock[0], sleep=sleep)
    assert renewer.due() == start + (end - start) * 2 / 3
    task = asyncio.get_running_loop().create_task(renewer.run())
    try:
        await asyncio.wait_for(renewed.wait(), 5)
        await eventually(lambda: _true_async(renewer.last_error != ""))
    finally:
        task.cancel()
    assert slept and slept[0] > 0
    assert credentials.generation == 1  # a failed renewal keeps the current certificate


async def _true_async(value: bool) -> bool:
    return value


class _FakeChannel:
    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.closed = False

    def unary_unary(self, *args: object) -> Any:
        return lambda *a, **k: ("called on", self.generation)

    async def close(self, grace: float | None = None) -> None:
        self.closed = True


async def test_a_rotating_channel_keeps_one_retired_channel_and_closes_older_ones(
    auth_registry: AuthRegistry,
) -> None:
    material = await auth_registry.enroll_node("node-e")
    credentials = RotatingCredentials(material)
    made: list[_FakeChannel] = []

    def factory(*_: object) -> _FakeChannel:
        made.append(_FakeChannel(credentials.generation))
        return made[-1]

    channel = RotatingChannel("x:1", credentials, CHANNEL_OPTIONS, factory)
    call = channel.unary_unary("/m")
    assert call(b"") == ("called on", 1)
    for _ in range(3):
        again = await auth_registry.enroll_node("node-e")
        credentials.update(TlsMaterial(again.ca_cert, again.cert, again.key))
        call(b"")
    assert call(b"") == ("called on", 4)
    await eventually(lambda: _true_async(made[0].closed and made[1].closed))
    assert not made[2].closed and not made[3].closed  # the last retired one stays for streams
    await channel.close()
    assert all(c.closed for c in made)
