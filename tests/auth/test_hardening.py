"""Safer defaults and the audit trail (issue 11, item 5): plaintext only on loopback unless
said loudly, the bound address in the log, private state directories, throttled enrollment,
and an audit log of refusals and admin actions that cannot fill the disk."""

from __future__ import annotations

import json
import logging
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from kodosumi.audit import AUDIT_DIR, AUDIT_FILE, AuditLog
from kodosumi.enrollment import EnrollmentToken
from kodosumi.errors import InvalidArgument
from kodosumi.plaintext import is_loopback_listen
from kodosumi.rpc.status import details_of
from kodosumi.v1 import auth_pb2, auth_pb2_grpc
from kodosumid.app import NodeApp
from kodosumid.config import NodeConfig
from registryd.config import ConfigError, RegistryConfig
from registryd.daemon import RegistryDaemon
from tests.auth.conftest import ADMIN, DOMAIN, AuthRegistry
from tests.registry.conftest import Pki, registry_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def audit_lines(state_dir: Path) -> list[dict[str, Any]]:
    text = (state_dir / AUDIT_DIR / AUDIT_FILE).read_text()
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:7470", True),
        ("127.8.0.1:0", True),
        ("[::1]:7470", True),
        ("localhost:7470", True),
        ("0.0.0.0:7470", False),
        ("[::]:7470", False),
        ("10.1.2.3:7470", False),
        ("node.lan:7470", False),
    ],
)
def test_which_listen_addresses_are_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback_listen(listen) is loopback


async def test_registryd_refuses_insecure_on_a_remote_address(tmp_path: Path) -> None:
    config = RegistryConfig(listen="0.0.0.0:0", state_dir=tmp_path / "r", insecure=True)
    with pytest.raises(ConfigError, match="--insecure-allow-remote"):
        await RegistryDaemon(config).start()
    # Nothing was started: not even the state directory was made.
    assert not (tmp_path / "r").exists()
    loopback = RegistryDaemon(replace(config, listen="127.0.0.1:0"))
    await loopback.start()
    await loopback.stop(grace=0)


async def test_kodosumid_refuses_insecure_on_a_remote_address(tmp_path: Path) -> None:
    config = NodeConfig(listen="0.0.0.0:0", state_dir=tmp_path / "n", insecure=True)
    with pytest.raises(InvalidArgument, match="--insecure-allow-remote"):
        await NodeApp(config).start()
    assert not (tmp_path / "n" / "node.json").exists()


async def test_the_log_names_the_address_bound_and_state_is_private(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # Binding a wildcard address sends nothing anywhere; the test only reads the log line.
    config = replace(registry_config(tmp_path / "r", pki), listen="0.0.0.0:0")
    daemon = RegistryDaemon(config)
    with caplog.at_level(logging.INFO, logger="registryd.daemon"):
        await daemon.start()
    try:
        assert f"listening on 0.0.0.0:{daemon.port}" in caplog.text
        assert mode(config.state_dir) == 0o700
        assert mode(config.state_dir / "pki") == 0o700
        assert mode(config.state_dir / "pki" / "registry.key") == 0o600
        assert mode(config.state_dir / AUDIT_DIR) == 0o700
    finally:
        await daemon.stop(grace=0)


async def test_refusals_and_admin_actions_are_audited(auth_registry: AuthRegistry) -> None:
    bob = await auth_registry.enroll_user("bob")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await auth_registry.auth(bob).ListUsers(auth_pb2.ListUsersRequest(), timeout=5)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await auth_registry.auth(auth_registry.admin()).Revoke(
        auth_pb2.RevokeRequest(identity=f"spiffe://{DOMAIN}/user/bob", reason="test"), timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as revoked:
        await auth_registry.auth(bob).WhoAmI(auth_pb2.WhoAmIRequest(), timeout=5)
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED

    state = auth_registry.daemon.config.state_dir
    assert mode(state / AUDIT_DIR / AUDIT_FILE) == 0o600
    lines = audit_lines(state)
    refused = [x for x in lines if x["event"] == "refused"]
    admin = [x for x in lines if x["event"] == "admin"]
    assert {
        "who": f"spiffe://{DOMAIN}/user/bob",
        "method": "/kodosumi.v1.AuthService/ListUsers",
        "code": "PERMISSION_DENIED",
        "reason": "PERMISSION_DENIED",
    }.items() <= refused[0].items()
    assert refused[1]["code"] == "UNAUTHENTICATED" and refused[1]["reason"] == "REVOKED"
    assert refused[1]["who"] == f"spiffe://{DOMAIN}/user/bob"
    assert admin[0]["who"] == f"spiffe://{DOMAIN}/user/{ADMIN}"
    assert admin[0]["method"] == "/kodosumi.v1.AuthService/Revoke"
    assert all(x["ts"] and x["peer"].startswith("ipv4:127.0.0.1") for x in lines)


async def test_wrong_enrollment_tokens_are_throttled_by_address(
    auth_registry: AuthRegistry,
) -> None:
    token = EnrollmentToken.decode(await auth_registry.node_token("node-t"))
    ca = auth_registry.pki.ca_cert.read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    codes: list[grpc.StatusCode] = []
    async with grpc.aio.secure_channel(
        token.enroll_address,
        credentials,
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as channel:
        stub = auth_pb2_grpc.EnrollmentServiceStub(channel)
        for guess in range(40):
            try:
                await stub.Enroll(auth_pb2.EnrollRequest(token=f"guess-{guess}"), timeout=5)
            except grpc.aio.AioRpcError as e:
                codes.append(e.code())
                last = e
    assert codes[:10] == [grpc.StatusCode.UNAUTHENTICATED] * 10
    # After the free failures the address waits; guesses in the wait are not even looked at.
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 25
    assert details_of(last)[0] == "ENROLLMENT_THROTTLED"
    lines = audit_lines(auth_registry.daemon.config.state_dir)
    guesses = [x for x in lines if x["method"] == "/kodosumi.v1.EnrollmentService/Enroll"]
    assert len(guesses) == 40
    assert guesses[0]["who"].startswith("peer:ipv4:127.0.0.1")
    assert guesses[0]["reason"] == "ENROLLMENT_TOKEN_INVALID"
    assert guesses[-1]["reason"] == "ENROLLMENT_THROTTLED"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_refusal_lines_are_rate_limited_and_the_file_rotates(tmp_path: Path) -> None:
    clock = FakeClock()
    audit = AuditLog(
        tmp_path,
        max_bytes=20_000,
        backups=2,
        refusals_per_second=10,
        refusal_burst=50,
        clock=clock,
    )
    for _ in range(10_000):
        audit.refused("peer:ipv4:10.0.0.9:1", "/x.Y/Z", "UNAUTHENTICATED", "GUESS")
    assert len(audit_lines(tmp_path)) == 50
    clock.now += 1.0
    audit.refused("peer:ipv4:10.0.0.9:1", "/x.Y/Z", "UNAUTHENTICATED", "GUESS")
    assert audit_lines(tmp_path)[-1]["suppressed"] == 9_950
    # Admin actions are never dropped; the files stay bounded by size and count.
    for _ in range(2_000):
        audit.admin("spiffe://d/user/root", "/x.Y/Revoke")
    audit.close()
    files = sorted(p.name for p in (tmp_path / AUDIT_DIR).iterdir())
    assert files == [AUDIT_FILE, f"{AUDIT_FILE}.1", f"{AUDIT_FILE}.2"]
    assert all(p.stat().st_size <= 20_200 for p in (tmp_path / AUDIT_DIR).iterdir())
    assert all(mode(p) == 0o600 for p in (tmp_path / AUDIT_DIR).iterdir())
