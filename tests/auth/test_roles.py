"""The node's view of identities: cached grants from the auth provider (and what happens when
it is away), the per-flow allow-list, the time-aware revocation list and the auth state
follower — on fake time, without a network."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from kodosumi.authz import ADMIN, FLOW, NODE, OPERATOR, USER, Grants, Principal, StaticRoleResolver
from kodosumi.errors import PermissionDenied, Unavailable
from kodosumi.pki import CertificateAuthority, create_ca, issue_certificate
from kodosumi.revocations import RevocationList
from kodosumi.spiffe import SpiffeId
from kodosumi.v1 import auth_pb2
from kodosumid.auth.roles import ProviderGrants, check_flow_access
from kodosumid.auth.sync import AuthStateFollower, apply_state
from kodosumid.config import FlowEntry
from kodosumid.network.backoff import Backoff, TimeSource

ALICE = SpiffeId.user("d", "alice")


class FakeProvider:
    def __init__(self) -> None:
        self.grants = Grants(frozenset({USER}), frozenset({"research"}))
        self.calls = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    async def fetch(self, identity: SpiffeId) -> Grants:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("down")
        return self.grants


def _resolver(provider: FakeProvider, now: list[float], **kwargs: object) -> ProviderGrants:
    return ProviderGrants(provider.fetch, ttl=5.0, max_stale=60.0, now=lambda: now[0], **kwargs)  # type: ignore[arg-type]


async def test_grants_are_cached_for_the_ttl_then_asked_again() -> None:
    provider, now = FakeProvider(), [0.0]
    grants = _resolver(provider, now)
    assert (await grants.grants_of(ALICE)).groups == {"research"}
    provider.grants = Grants(frozenset({USER, OPERATOR}))
    now[0] = 4.9
    assert (await grants.grants_of(ALICE)).roles == {USER}
    now[0] = 5.1  # the bound: a change holds within the TTL even without a push
    assert (await grants.grants_of(ALICE)).roles == {USER, OPERATOR}
    assert provider.calls == 2


async def test_a_push_drops_the_cache_at_once() -> None:
    provider, now = FakeProvider(), [0.0]
    grants = _resolver(provider, now)
    await grants.grants_of(ALICE)
    provider.grants = Grants(frozenset({USER, ADMIN}))
    grants.invalidate()
    assert (await grants.grants_of(ALICE)).roles == {USER, ADMIN}


async def test_machines_are_not_looked_up() -> None:
    provider, now = FakeProvider(), [0.0]
    grants = _resolver(provider, now)
    assert (await grants.grants_of(SpiffeId.node("d", "n"))).roles == {NODE}
    assert (await grants.grants_of(SpiffeId.flow("d", "n", "f"))).roles == {FLOW}
    assert provider.calls == 0


async def test_provider_down_stale_answers_then_least_privilege() -> None:
    provider, now = FakeProvider(), [0.0]
    provider.grants = Grants(frozenset({USER, ADMIN}))
    grants = _resolver(provider, now)
    await grants.grants_of(ALICE)
    provider.down = True
    now[0] = 30.0
    assert (await grants.grants_of(ALICE)).roles == {USER, ADMIN}  # stale but recent
    now[0] = 61.0
    assert (await grants.grants_of(ALICE)) == Grants(frozenset({USER}))


async def test_concurrent_lookups_share_one_call() -> None:
    provider, now = FakeProvider(), [0.0]
    provider.gate = asyncio.Event()
    grants = _resolver(provider, now)
    waiting = [asyncio.ensure_future(grants.grants_of(ALICE)) for _ in range(5)]
    await asyncio.sleep(0)
    provider.gate.set()
    results = await asyncio.gather(*waiting)
    assert provider.calls == 1 and all(r.groups == {"research"} for r in results)


async def test_local_configuration_adds_roles() -> None:
    provider, now = FakeProvider(), [0.0]
    grants = _resolver(provider, now, local=StaticRoleResolver(operators=["alice"]))
    assert (await grants.grants_of(ALICE)).roles == {USER, OPERATOR}


def test_the_flow_allow_list() -> None:
    flow = FlowEntry("secret", "m:f", groups=("research",))
    open_flow = FlowEntry("hello", "m:f")
    member = Principal(ALICE, frozenset({USER}), frozenset({"research"}))
    stranger = Principal(SpiffeId.user("d", "bob"), frozenset({USER}), frozenset({"ops"}))
    operator = Principal(SpiffeId.user("d", "olga"), frozenset({USER, OPERATOR}))
    check_flow_access(member, flow)
    check_flow_access(operator, flow)
    check_flow_access(stranger, open_flow)
    for refused in (
        stranger,
        # A forwarding peer cannot say for whom it calls: machines do not pass a list.
        Principal(SpiffeId.node("d", "n"), frozenset({NODE})),
        Principal(SpiffeId.flow("d", "n", "f"), frozenset({FLOW})),
    ):
        with pytest.raises(PermissionDenied) as info:
            check_flow_access(refused, flow)
        assert info.value.reason == "FLOW_NOT_ALLOWED"


def test_an_identity_revocation_covers_certificates_valid_from_before_it() -> None:
    ca = CertificateAuthority(*create_ca("d"))
    old, _ = ca.issue(ALICE)
    revoked_at = dt.datetime.now(dt.UTC)
    revocations = RevocationList()
    revocations.replace([], {str(ALICE): revoked_at})
    assert revocations.is_revoked(old, ALICE)
    later = issue_certificate(
        ca.cert,
        ca.key,
        old.public_key(),  # type: ignore[arg-type]
        ALICE,
        not_before=revoked_at + dt.timedelta(seconds=2),
    )
    assert not revocations.is_revoked(later, ALICE)
    revocations.replace([later.serial_number], [])
    assert revocations.is_revoked(later, ALICE) and not revocations.is_revoked(old, ALICE)
    revocations.replace([], [str(ALICE)])  # without a time: every certificate
    assert revocations.is_revoked(later, ALICE)


def test_the_auth_state_becomes_the_revocation_list() -> None:
    state = auth_pb2.WatchAuthStateResponse(generation=3, revoked_serials=["ff", "10"])
    state.revoked_identities.add(identity=str(ALICE)).revoke_time.FromSeconds(1_700_000_000)
    revocations = RevocationList()
    apply_state(state, revocations)
    assert revocations.serials == {255, 16}
    assert revocations.identities == {str(ALICE): dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)}


class ScriptedStream:
    """Two connections: the first delivers one state then breaks, the second one more."""

    def __init__(self) -> None:
        self.connections = 0

    async def watch(self) -> AsyncIterator[auth_pb2.WatchAuthStateResponse]:
        self.connections += 1
        yield auth_pb2.WatchAuthStateResponse(
            generation=self.connections, revoked_serials=[format(self.connections, "x")]
        )
        if self.connections == 1:
            raise Unavailable("stream broke")
        await asyncio.Event().wait()


async def test_the_follower_applies_states_and_reconnects() -> None:
    stream, revocations, changes = ScriptedStream(), RevocationList(), []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    follower = AuthStateFollower(
        stream,
        revocations,
        lambda: changes.append(1),
        Backoff(0.2, 10.0),
        TimeSource(sleep=sleep, random=lambda: 0.5),
    )
    task = asyncio.ensure_future(follower.run())
    try:
        for _ in range(100):
            if follower.generation == 2:
                break
            await asyncio.sleep(0)
        assert follower.generation == 2
        assert revocations.serials == {2}
        assert slept == [pytest.approx(0.15)]  # one jittered backoff before reconnecting
        assert len(changes) == 3  # two states and the break (caches dropped each time)
    finally:
        task.cancel()
