"""The exit-code registry: distinct codes, help for each, and the mappings scripts rely on."""

from __future__ import annotations

import grpc
import pytest

from kodoclient import ConfigError, KodoclientError
from kodoclient.cli import exit_codes as ec
from kodosumi.v1 import event_pb2 as pb


def test_codes_and_names_are_unique_and_documented() -> None:
    assert len({c.code for c in ec.REGISTRY}) == len(ec.REGISTRY)
    assert len({c.name for c in ec.REGISTRY}) == len(ec.REGISTRY)
    for code in ec.REGISTRY:
        assert code.help.strip()
        assert 0 <= code.code <= 255
    assert all(c.name in ec.help_table() for c in ec.REGISTRY)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (pb.EXECUTION_STATUS_SUCCEEDED, ec.OK),
        (pb.EXECUTION_STATUS_FAILED, ec.FAILED),
        (pb.EXECUTION_STATUS_CANCELLED, ec.CANCELLED),
        (pb.EXECUTION_STATUS_TIMED_OUT, ec.TIMED_OUT),
        (pb.EXECUTION_STATUS_RUNNING, ec.INCOMPLETE),
        (pb.EXECUTION_STATUS_UNSPECIFIED, ec.INCOMPLETE),
    ],
)
def test_only_success_exits_zero(status: int, expected: ec.ExitCode) -> None:
    assert ec.for_execution_status(status) is expected


def test_the_four_outcomes_and_the_usual_failures_are_distinct() -> None:
    wanted = [ec.FAILED, ec.CANCELLED, ec.TIMED_OUT, ec.USAGE, ec.NOT_FOUND, ec.UNREACHABLE]
    assert len({c.code for c in wanted}) == len(wanted)
    assert ec.OK.code == 0 and all(c.code != 0 for c in wanted)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, ec.USAGE),
        (grpc.StatusCode.NOT_FOUND, ec.NOT_FOUND),
        (grpc.StatusCode.UNAVAILABLE, ec.UNREACHABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, ec.UNREACHABLE),
        (grpc.StatusCode.PERMISSION_DENIED, ec.DENIED),
        (grpc.StatusCode.UNAUTHENTICATED, ec.DENIED),
        (grpc.StatusCode.FAILED_PRECONDITION, ec.CONFLICT),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ec.BUSY),
        (grpc.StatusCode.INTERNAL, ec.ERROR),
    ],
)
def test_rpc_codes(code: grpc.StatusCode, expected: ec.ExitCode) -> None:
    assert ec.for_error(KodoclientError(code, "x")) is expected


def test_config_errors() -> None:
    assert ec.for_error(ConfigError("no creds", reason="NO_CREDENTIALS")) is ec.UNREACHABLE
    assert ec.for_error(ConfigError("bad flags")) is ec.USAGE


def test_the_cli_reference_lists_every_exit_code() -> None:
    from pathlib import Path

    reference = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    for code in ec.REGISTRY:
        assert f"| {code.code} | {code.name} |" in reference, code.name
