"""The quota book on its own (kodosumid/quotas.py): limits per role/group, time injected."""

from __future__ import annotations

import pytest

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, QuotaExceeded
from kodosumi.spiffe import SpiffeId
from kodosumid.event_store import ExecutionRecord, StatusChange
from kodosumid.quotas import Limits, Quotas, QuotasConfig, quotas_config

ANN = Principal(SpiffeId.user("d.test", "ann"), frozenset({"user"}))
BOB = Principal(SpiffeId.user("d.test", "bob"), frozenset({"user"}), frozenset({"research"}))
ADMIN = Principal(SpiffeId.user("d.test", "root"), frozenset({"user", "admin"}))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(execution_id: str, owner: str) -> ExecutionRecord:
    return ExecutionRecord(execution_id, "hello", owner, 1, "", {}, 0)


def test_config_defaults_roles_and_groups() -> None:
    config = quotas_config(
        {
            "concurrent_executions": 3,
            "roles": {"user": {"launches_per_minute": 10}},
            "groups": {"research": {"launches_per_minute": 50, "open_streams": 0}},
        }
    )
    assert config.limits_for(ANN) == Limits(concurrent_executions=3, launches_per_minute=10)
    bob = config.limits_for(BOB)
    assert (bob.concurrent_executions, bob.launches_per_minute, bob.open_streams) == (3, 50, 0)
    assert config.limits_for(ADMIN).concurrent_executions == 0  # admins: no limit
    with pytest.raises(InvalidArgument, match=r"quotas\.roles\.user\.nope"):
        quotas_config({"roles": {"user": {"nope": 1}}})
    with pytest.raises(InvalidArgument, match=r"quotas\.open_streams"):
        quotas_config({"open_streams": -1})


def test_concurrency_is_reserved_at_admission_and_freed_by_a_terminal_status() -> None:
    quotas = Quotas(QuotasConfig(Limits(concurrent_executions=2)))
    first, second = quotas.admit_launch(ANN), quotas.admit_launch(ANN)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.admit_launch(ANN)  # two reserved, none stored yet: no overshoot
    assert (refused.value.quota, refused.value.limit) == ("concurrent_executions", 2)
    assert refused.value.reason == "QUOTA_CONCURRENT_EXECUTIONS"
    first.commit("e1")
    second.release()  # that launch failed: its slot is free again
    third = quotas.admit_launch(ANN)
    third.commit("e2")
    quotas.admit_launch(BOB).release()  # other identities have their own count
    with pytest.raises(QuotaExceeded):
        quotas.admit_launch(ANN)
    quotas.stored(_record("e1", ANN.id), 1, [StatusChange(9, 7, "")])  # SUCCEEDED
    quotas.admit_launch(ANN).release()


def test_launch_rate_is_a_sliding_minute() -> None:
    clock = Clock()
    quotas = Quotas(QuotasConfig(Limits(launches_per_minute=3)), clock=clock)
    for _ in range(3):
        quotas.admit_launch(ANN).release()
        clock.now += 1
    with pytest.raises(QuotaExceeded, match="launches_per_minute"):
        quotas.admit_launch(ANN)
    clock.now += 58  # the first launch leaves the window
    quotas.admit_launch(ANN).release()


def test_streams_inputs_and_stored_bytes() -> None:
    async def stored(owner: str) -> int:
        return 500 if owner == ANN.id else 0

    quotas = Quotas(
        QuotasConfig(Limits(open_streams=1, max_input_bytes=100, stored_bytes=500)),
        stored_bytes=stored,
    )
    with quotas.open_stream(ANN), pytest.raises(QuotaExceeded, match="open_streams"):
        quotas.open_stream(ANN)
    quotas.open_stream(ANN).close()
    quotas.check_inputs(ANN, 100)
    with pytest.raises(QuotaExceeded, match="max_input_bytes"):
        quotas.check_inputs(ANN, 101)
    quotas.check_inputs(ANN, 1000, flow_limit=2000)  # the flow's own limit wins
    with pytest.raises(QuotaExceeded, match="limit 50"):
        quotas.check_inputs(ADMIN, 60, flow_limit=50)  # for admins too


async def test_stored_bytes_quota() -> None:
    async def stored(owner: str) -> int:
        return 500 if owner == ANN.id else 0

    quotas = Quotas(QuotasConfig(Limits(stored_bytes=500)), stored_bytes=stored)
    with pytest.raises(QuotaExceeded, match="stored_bytes"):
        await quotas.check_stored(ANN)
    await quotas.check_stored(BOB)


def test_seed_counts_open_executions_after_a_restart() -> None:
    quotas = Quotas(QuotasConfig(Limits(concurrent_executions=1)))
    quotas.seed([_record("e1", ANN.id)])
    with pytest.raises(QuotaExceeded):
        quotas.admit_launch(ANN)
    quotas.ended("e1")
    quotas.admit_launch(ANN).release()
