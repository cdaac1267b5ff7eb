"""The auth provider's domain on a manual clock with the memory store: tokens expire, an
identity revocation covers the certificates issued so far and not those issued after it,
grants come from the database, and the auth state generation tells nodes to drop caches."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography import x509

from kodosumi.authz import ADMIN, NODE, OPERATOR, USER, Principal
from kodosumi.csr import build_csr
from kodosumi.enrollment import EnrollmentToken
from kodosumi.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from kodosumi.pki import CertificateAuthority, generate_private_key
from kodosumi.server_identity import is_reserved, reserved_names
from kodosumi.spiffe import SpiffeId
from registryd.auth.issuer import Issuer
from registryd.auth.memory_store import MemoryAuthStore
from registryd.auth.model import HostNames
from registryd.auth.provider import AuthProvider, AuthSettings
from registryd.clock import ManualClock

DOMAIN = "unit.kodosumi"
ROOT = Principal(SpiffeId.user(DOMAIN, "root"), frozenset({ADMIN, USER}))


@pytest.fixture
async def provider(tmp_path: Path) -> AuthProvider:
    ca = CertificateAuthority.create(DOMAIN, tmp_path / "ca.pem", tmp_path / "ca.key")
    store = MemoryAuthStore()
    clock = ManualClock(time.time())
    settings = AuthSettings(
        certificate_lifetime=3600,
        token_lifetime=60,
        admins=("root",),
        enroll_address="127.0.0.1:7461",
        registry_address="127.0.0.1:7460",
    )
    p = AuthProvider(store, Issuer(ca, store), clock, settings)
    await p.start()
    return p


def _csr(identity: SpiffeId) -> bytes:
    return build_csr(generate_private_key(), identity)


async def _enroll(provider: AuthProvider, name: str) -> x509.Certificate:
    identity = SpiffeId.user(DOMAIN, name)
    token, _ = await provider.create_token(ROOT, identity)
    issued = await provider.enroll(EnrollmentToken.decode(token).secret, _csr(identity))
    return issued.cert


def _clock(provider: AuthProvider) -> ManualClock:
    assert isinstance(provider.clock, ManualClock)
    return provider.clock


async def test_tokens_expire(provider: AuthProvider) -> None:
    await provider.create_user(ROOT, "alice")
    token, expires = await provider.create_token(ROOT, SpiffeId.user(DOMAIN, "alice"), ttl=30)
    assert expires == pytest.approx(provider.clock.now() + 30)
    _clock(provider).advance(31)
    with pytest.raises(Unauthenticated):
        await provider.enroll(
            EnrollmentToken.decode(token).secret, _csr(SpiffeId.user(DOMAIN, "a"))
        )


async def test_a_revoked_identity_may_enroll_again(provider: AuthProvider) -> None:
    await provider.create_user(ROOT, "alice")
    old = await _enroll(provider, "alice")
    identity = SpiffeId.user(DOMAIN, "alice")
    _clock(provider).advance(10)
    await provider.revoke_identity(str(identity), "compromised")
    assert provider.revocations.is_revoked(old, identity)
    _clock(provider).advance(1)
    new = await _enroll(provider, "alice")
    # Valid from after the revocation (not backdated into it), so it is accepted.
    assert new.not_valid_before_utc.timestamp() > provider.clock.now() - 2
    assert not provider.revocations.is_revoked(new, identity)
    listed = await provider.list_certificates(str(identity))
    assert [revoked for _, revoked in listed] == [True, False]


async def test_grants_come_from_the_database(provider: AuthProvider) -> None:
    await provider.create_user(ROOT, "olga", roles=[OPERATOR], groups=["ops"])
    grants = await provider.grants_of(SpiffeId.user(DOMAIN, "olga"))
    assert grants.roles == {USER, OPERATOR} and grants.groups == {"ops"}
    # Unknown people are plain users; bootstrap admins are admins; machines hold their kind.
    assert (await provider.grants_of(SpiffeId.user(DOMAIN, "x"))).roles == {USER}
    assert (await provider.grants_of(SpiffeId.user(DOMAIN, "root"))).roles == {USER, ADMIN}
    assert (await provider.grants_of(SpiffeId.node(DOMAIN, "n"))).roles == {NODE}


async def test_bad_requests(provider: AuthProvider) -> None:
    await provider.create_user(ROOT, "alice")
    with pytest.raises(AlreadyExists):
        await provider.create_user(ROOT, "alice")
    with pytest.raises(InvalidArgument):
        await provider.create_user(ROOT, "bob", roles=["wizard"])
    with pytest.raises(InvalidArgument):
        await provider.create_user(ROOT, "bad name")
    with pytest.raises(NotFound):
        await provider.update_user("nobody", [], [])
    with pytest.raises(NotFound):
        await provider.revoke_serial("abc")
    with pytest.raises(InvalidArgument):
        await provider.revoke_serial("not hex")
    with pytest.raises(InvalidArgument):
        await provider.revoke_identity("spiffe://elsewhere/user/a")


async def test_the_auth_state_follows_changes(provider: AuthProvider) -> None:
    states = provider.watch()
    first = await anext(states)
    await provider.create_user(ROOT, "alice")
    second = await asyncio.wait_for(anext(states), 5)
    assert second.generation > first.generation
    cert = await _enroll(provider, "alice")
    await provider.revoke_serial(format(cert.serial_number, "x"))
    third = await asyncio.wait_for(anext(states), 5)
    assert [r.serial for r in third.revocations.serials] == [cert.serial_number]
    provider.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(states), 5)


async def test_certificates_carry_host_names_for_servers_only(provider: AuthProvider) -> None:
    node = SpiffeId.node(DOMAIN, "n1")
    # Since issue 11 the CA signs only approved names (or loopback): approve them first.
    await provider.approve_names(ROOT, "n1", HostNames(("n1.lan",), ("10.0.0.1",)))
    issued = await provider.renew(
        Principal(node, frozenset({NODE})),
        build_csr(generate_private_key(), node, dns_names=("n1.lan",), ip_addresses=("10.0.0.1",)),
    )
    sans = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["n1.lan", *reserved_names(node)]
    user = SpiffeId.user(DOMAIN, "alice")
    issued = await provider.renew(
        Principal(user, frozenset({USER})),
        build_csr(generate_private_key(), user, dns_names=("evil.example",)),
    )
    sans = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == []
    # Short-lived: the configured lifetime from now.
    end = issued.cert.not_valid_after_utc.timestamp()
    assert abs(end - (provider.clock.now() + 3600)) < 2


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = [n for n in sans.get_values_for_type(x509.DNSName) if not is_reserved(n)]
    return dns, [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def _node_csr(node: SpiffeId, dns: tuple[str, ...], ips: tuple[str, ...]) -> bytes:
    return build_csr(generate_private_key(), node, dns_names=dns, ip_addresses=ips)


async def test_a_csr_asking_for_names_nobody_allowed_is_refused_and_keeps_the_token(
    provider: AuthProvider,
) -> None:
    """Issue 11 item 3: an enrolled node got `registry.acme.example`, `*.acme.example`,
    `bank.example.com` and foreign IPs signed, and a bad CSR used its token up."""
    node = SpiffeId.node(DOMAIN, "n2")
    token, _ = await provider.create_token(ROOT, node)
    secret = EnrollmentToken.decode(token).secret
    greedy = _node_csr(
        node, ("registry.acme.example", "bank.example.com"), ("127.0.0.1", "10.66.0.1")
    )
    with pytest.raises(InvalidArgument) as refused:
        await provider.enroll(secret, greedy)
    assert refused.value.reason == "HOST_NAMES_NOT_ALLOWED"
    for extra in ("registry.acme.example", "bank.example.com", "10.66.0.1"):
        assert extra in refused.value.message
    with pytest.raises(InvalidArgument, match="wildcard"):
        await provider.enroll(secret, _node_csr(node, ("*.acme.example",), ()))
    with pytest.raises(InvalidArgument):
        await provider.enroll(secret, b"not a csr")
    # The token survived all three: a modest request still enrolls.
    issued = await provider.enroll(secret, _node_csr(node, ("localhost",), ("127.0.0.1",)))
    assert _sans(issued.cert) == (["localhost"], ["127.0.0.1"])
    with pytest.raises(Unauthenticated):
        await provider.enroll(secret, _node_csr(node, ("localhost",), ()))


async def test_names_in_the_token_are_signed_and_kept_across_renewals(
    provider: AuthProvider,
) -> None:
    node = SpiffeId.node(DOMAIN, "n3")
    token, _ = await provider.create_token(ROOT, node, names=HostNames(("n3.lan",), ("10.1.2.3",)))
    decoded = EnrollmentToken.decode(token)
    assert (decoded.dns_names, decoded.ip_addresses) == (("n3.lan",), ("10.1.2.3",))
    assert decoded.registry_id == "" and decoded.registry_addresses == ()
    with pytest.raises(InvalidArgument, match=r"other\.lan"):
        await provider.enroll(decoded.secret, _node_csr(node, ("n3.lan", "other.lan"), ()))
    issued = await provider.enroll(
        decoded.secret, _node_csr(node, ("localhost", "n3.lan"), ("10.1.2.3",))
    )
    assert _sans(issued.cert) == (["localhost", "n3.lan"], ["10.1.2.3"])
    me = Principal(node, frozenset({NODE}))
    # Renewal copies the old names and sneaks one in: the CA drops what is not allowed.
    renewed = await provider.renew(
        me, _node_csr(node, ("localhost", "n3.lan", "bank.example.com"), ("10.1.2.3",))
    )
    assert _sans(renewed.cert) == (["localhost", "n3.lan"], ["10.1.2.3"])
    # An admin approves a new address: the next renewal carries it, without enrolling again.
    await provider.approve_names(ROOT, "n3", HostNames(("n3.new.lan",), ("10.9.0.3",)))
    moved = await provider.renew(me, _node_csr(node, ("localhost", "n3.lan"), ("10.1.2.3",)))
    assert _sans(moved.cert) == (["localhost", "n3.new.lan"], ["10.9.0.3"])
    with pytest.raises(InvalidArgument):
        await provider.approve_names(ROOT, "n3", HostNames(("*.lan",), ()))
    with pytest.raises(InvalidArgument):
        await provider.create_token(
            ROOT, SpiffeId.user(DOMAIN, "root"), names=HostNames(("x.lan",), ())
        )
