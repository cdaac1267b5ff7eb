"""The quota book on its own (kodosumid/quotas.py): limits per role/group, time injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument, QuotaExceeded
from kodosumi.spiffe import SpiffeId
from kodosumid.config import load_config
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


async def test_file_quotas_per_role_and_group_with_uploads_in_progress() -> None:
    config = quotas_config(
        {
            "file_bytes": 100,
            "max_file_bytes": 60,
            "groups": {"research": {"file_bytes": 1000, "max_file_bytes": 0}},
        }
    )
    quotas = Quotas(config)
    stored = {ANN.id: 30}

    async def stored_bytes(owner: str) -> int:
        return stored.get(owner, 0)

    with pytest.raises(QuotaExceeded, match="max_file_bytes") as big:
        await quotas.admit_file(ANN, 61, stored_bytes)
    assert (big.value.quota, big.value.limit, big.value.reason) == (
        "max_file_bytes",
        60,
        "QUOTA_MAX_FILE_BYTES",
    )
    # 30 stored + 50 being stored: 20 left, counted before anything is stored.
    first = await quotas.admit_file(ANN, 50, stored_bytes)
    with pytest.raises(QuotaExceeded, match="file_bytes") as full:
        await quotas.admit_file(ANN, 21, stored_bytes)
    assert (full.value.quota, full.value.limit, full.value.subject) == ("file_bytes", 100, ANN.id)
    last = await quotas.admit_file(ANN, 20, stored_bytes)
    first.release()
    first.release()  # once only
    last.release()
    assert (await quotas.admit_file(ANN, 60, stored_bytes)) is not None
    # A group raises both; admins and machines are not held.
    await quotas.admit_file(BOB, 900, stored_bytes)
    await quotas.admit_file(ADMIN, 10**12, stored_bytes)
    node = Principal(SpiffeId.node("d.test", "n1"), frozenset({"node"}))
    await quotas.admit_file(node, 10**12, stored_bytes)


def test_file_quotas_come_from_the_nodes_toml(tmp_path: Path) -> None:
    toml = tmp_path / "node.toml"
    toml.write_text(
        "[files]\nmax_file_bytes = 5000\n"
        "[quotas]\nfile_bytes = 100\nmax_file_bytes = 10\n"
        "[quotas.roles.operator]\nmax_file_bytes = 50\n"
    )
    config = load_config(toml, env={})
    assert config.files.max_file_bytes == 5000
    operator = Principal(SpiffeId.user("d.test", "olga"), frozenset({"operator"}))
    ann = config.quotas.limits_for(ANN)
    assert (ann.file_bytes, ann.max_file_bytes) == (100, 10)
    assert config.quotas.limits_for(operator).max_file_bytes == 50
    # The per-owner setting of [files] moved to the quotas: an old file says where.
    toml.write_text("[files]\nstored_bytes_per_owner = 100\n")
    with pytest.raises(InvalidArgument, match=r"stored_bytes_per_owner.*\[quotas\] file_bytes"):
        load_config(toml, env={})
