"""The auth commands of `kodoclient` through click's CliRunner against a real registry:
`pki init` makes a trust domain, the admin adds a user, the user logs in with the token,
admins list and revoke, `verify` checks badges offline. The CLI runs in a worker thread (it
runs its own event loop) while the registry serves on the test's loop."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import exit_codes as ec
from kodoclient.cli import main
from kodosumi.badges import CERTIFIED_FLOW, Badge, sign_badge
from kodosumi.enrollment import EnrollmentToken
from kodosumi.pki import CertificateAuthority
from registryd.clock import ManualClock
from registryd.config import AuthConfig, RegistryConfig, TlsConfig
from registryd.daemon import RegistryDaemon

DOMAIN = "cli.kodosumi"


async def koco(*args: str) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(main, ["--timeout", "5", *args], catch_exceptions=False)

    return await asyncio.to_thread(invoke)


def _lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
async def domain(tmp_path: Path) -> AsyncIterator[tuple[Path, RegistryDaemon]]:
    admin_state = tmp_path / "admin"
    result = await koco(
        "--state-dir", str(admin_state), "pki", "init", "--trust-domain", DOMAIN, "--admin", "root"
    )
    assert result.exit_code == 0, result.output
    assert "registryd --ca-cert" in result.stdout
    ca = admin_state / "ca"
    config = RegistryConfig(
        registry_id="r1",
        listen="127.0.0.1:0",
        state_dir=tmp_path / "registry",
        shutdown_grace=0.1,
        tls=TlsConfig(ca_cert=ca / "ca.pem", ca_key=ca / "ca.key"),
        auth=AuthConfig(admins=("root",)),
    )
    registry = RegistryDaemon(config, clock=ManualClock(time.time()), run_sweeper=False)
    await registry.start()
    yield admin_state, registry
    await registry.stop(grace=0)


async def test_pki_init_keeps_the_ca_key_private(
    domain: tuple[Path, RegistryDaemon],
) -> None:
    admin_state, _ = domain
    for secret in (admin_state / "ca" / "ca.key", admin_state / "identity" / "client.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((admin_state / "ca").stat().st_mode) == 0o700
    again = await koco("--state-dir", str(admin_state), "pki", "init", "--trust-domain", DOMAIN)
    assert again.exit_code == 2 and "--force" in again.output


async def test_add_a_user_who_logs_in_then_gets_revoked(
    domain: tuple[Path, RegistryDaemon], tmp_path: Path
) -> None:
    admin_state, registry = domain
    admin = ("--state-dir", str(admin_state))
    reg = ("--registry", registry.address)

    added = await koco(*admin, "user", "add", "alice", "--group", "research", *reg)
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()
    assert token.startswith("kodo1.")

    alice = ("--state-dir", str(tmp_path / "alice"))
    login = await koco(*alice, "login", token)
    assert login.exit_code == 0, login.output
    assert f"logged in as spiffe://{DOMAIN}/user/alice" in login.stdout
    me = _lines(await koco(*alice, "whoami", "--json"))[0]
    assert me["identity"] == f"spiffe://{DOMAIN}/user/alice"
    assert me["groups"] == ["research"]
    # The token is used up.
    assert (await koco("--state-dir", str(tmp_path / "eve"), "login", token)).exit_code == (
        ec.DENIED.code
    )
    # Not an admin.
    assert (await koco(*alice, "user", "list")).exit_code == ec.DENIED.code

    users = _lines(await koco(*admin, "user", "list", "--json", *reg))
    assert [u["name"] for u in users] == ["alice"]
    assert (await koco(*admin, "user", "set", "alice", "--role", "operator", *reg)).exit_code == 0
    assert "operator" in _lines(await koco(*alice, "whoami", "--json"))[0]["roles"]  # type: ignore[operator]
    groups = _lines(await koco(*admin, "group", "list", "--json", *reg))
    assert groups == [{"name": "research", "members": ["alice"]}]
    node_token = await koco(*admin, "pki", "token", "--node", "node-1", *reg)
    assert node_token.exit_code == 0 and node_token.stdout.startswith("kodo1.")
    certs = _lines(await koco(*admin, "pki", "certs", "--json", *reg))
    assert [c["identity"] for c in certs] == [f"spiffe://{DOMAIN}/user/alice"]

    revoked = await koco(*admin, "pki", "revoke", "--user", "alice", "--reason", "left", *reg)
    assert revoked.exit_code == 0, revoked.output
    listed = _lines(await koco(*admin, "pki", "revocations", "--json", *reg))
    assert listed[0]["identity"] == f"spiffe://{DOMAIN}/user/alice"
    refused = await koco(*alice, "whoami")
    assert refused.exit_code == ec.DENIED.code
    assert "REVOKED" in refused.stderr


async def test_verify_checks_badges_offline(domain: tuple[Path, RegistryDaemon]) -> None:
    admin_state, _ = domain
    ca_dir = admin_state / "ca"
    ca = CertificateAuthority.load(ca_dir / "ca.pem", ca_dir / "ca.key")
    now = time.time()
    token = sign_badge(
        Badge(CERTIFIED_FLOW, f"spiffe://{DOMAIN}/flow/n/f", DOMAIN, now, now + 60, {"v": "1"}),
        ca.key,
    )
    ok = await koco("--ca", str(ca_dir / "ca.pem"), "verify", token)
    assert ok.exit_code == 0, ok.output
    assert f"valid certified-flow for spiffe://{DOMAIN}/flow/n/f" in ok.stdout
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bad = await koco("--ca", str(ca_dir / "ca.pem"), "verify", "--json", tampered)
    assert bad.exit_code == ec.DENIED.code
    assert _lines(bad)[0]["valid"] is False


async def test_node_tokens_name_host_names_and_admins_approve_new_ones(
    domain: tuple[Path, RegistryDaemon], tmp_path: Path
) -> None:
    """`koco pki token --dns/--ip` and `koco pki approve-names` (issue 11 item 3, issue 12)."""
    admin_state, registry = domain
    admin = ("--state-dir", str(admin_state))
    reg = ("--registry", registry.address)
    made = await koco(
        *admin, "pki", "token", "--node", "n1", "--dns", "n1.lan", "--ip", "10.7.0.1", *reg
    )
    assert made.exit_code == 0, made.output
    token = EnrollmentToken.decode(made.stdout.strip())
    assert (token.dns_names, token.ip_addresses) == (("n1.lan",), ("10.7.0.1",))
    # The token names the registry (clients then accept only it) and its addresses.
    assert token.registry_id == "r1"
    assert token.registry_addresses[0] == token.registry_address
    bad = await koco(*admin, "pki", "token", "--node", "n2", "--dns", "*.lan", *reg)
    assert bad.exit_code == ec.USAGE.code and "*.lan" in bad.stderr

    approved = await koco(
        *admin, "pki", "approve-names", "n1", "--dns", "n1.new.lan", "--json", *reg
    )
    assert approved.exit_code == 0, approved.output
    assert _lines(approved)[0]["dns_names"] == ["n1.new.lan"]
    assert (await koco(*admin, "pki", "approve-names", "n1", "--ip", "nope", *reg)).exit_code == (
        ec.USAGE.code
    )
