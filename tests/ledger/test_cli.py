"""`koco credit grant`, `koco budget set/show/clear`, `koco balance` and `koco ledger` (table,
`--json`, `--csv`) through click's CliRunner against a real registry, as the admin and as a
user; a user setting their own budget is refused with the permission exit code."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result

from kodoclient.cli import exit_codes as ec
from kodoclient.cli import main
from kodosumi.tls import TlsMaterial
from kodosumi.v1 import ledger_pb2 as pb
from tests.auth.conftest import AuthRegistry
from tests.ledger.conftest import Ledgers


def _files(folder: Path, tls: TlsMaterial) -> list[str]:
    folder.mkdir(parents=True)
    paths = {"ca": tls.ca_cert, "cert": tls.cert, "key": tls.key}
    args = []
    for name, data in paths.items():
        (folder / f"{name}.pem").write_bytes(data)
        args += [f"--{name}", str(folder / f"{name}.pem")]
    return args


async def _koco(identity: list[str], registry: str, *args: str) -> Result:
    def invoke() -> Result:
        return CliRunner().invoke(
            main,
            ["--timeout", "5", *identity, *args, "--registry", registry],
            catch_exceptions=False,
        )

    return await asyncio.to_thread(invoke)


async def test_admin_and_user_commands(
    auth_registry: AuthRegistry, ledgers: Ledgers, tmp_path: Path
) -> None:
    address = auth_registry.address
    admin = _files(tmp_path / "admin", auth_registry.admin())
    alice = _files(tmp_path / "alice", auth_registry.pki.user("alice"))

    granted = await _koco(admin, address, "credit", "grant", "alice", "20", "EUR", "--memo", "hi")
    assert granted.exit_code == 0, granted.output
    assert "user/alice: +20 EUR" in granted.stderr
    result = await _koco(admin, address, "budget", "set", "alice", "5", "EUR")
    assert result.exit_code == 0, result.output
    result = await _koco(
        admin, address, "budget", "set", "--group", "ml", "9", "EUR", "--period", "day"
    )
    assert result.exit_code == 0, result.output

    node = ledgers.node("n1")
    await node.Reserve(pb.ReserveRequest(account="alice", amount="2", currency="EUR", key="e1"))
    await node.Settle(pb.SettleRequest(key="e1", amount="1.25", currency="EUR", receipt_id="r1"))

    shown = await _koco(alice, address, "budget", "show", "--json")
    assert [(b["subject"], b["used"]) for b in map(json.loads, shown.stdout.splitlines())] == [
        ("user/alice", "1.25")
    ]
    every = await _koco(admin, address, "budget", "show", "--all")
    assert "group/ml" in every.stdout and "user/alice" in every.stdout
    balance = await _koco(alice, address, "balance")
    assert balance.exit_code == 0 and "18.75" in balance.stdout
    as_json = await _koco(alice, address, "balance", "--json")
    assert json.loads(as_json.stdout)["available"] == "18.75"
    table = await _koco(alice, address, "ledger")
    assert "settle" in table.stdout and "r1" in table.stdout
    rows = list(
        csv.DictReader(io.StringIO((await _koco(alice, address, "ledger", "--csv")).stdout))
    )
    assert [(r["kind"], r["amount"], r["credit"]) for r in rows] == [
        ("settle", "1.25", "node/n1"),
        ("grant", "20", "user/alice"),
    ]
    limited = await _koco(alice, address, "ledger", "--json", "--limit", "1")
    assert len(limited.stdout.splitlines()) == 1

    # A user sets no budget (theirs or anyone's), grants nothing and reads only their own.
    for args in (
        ("budget", "set", "alice", "1000", "EUR"),
        ("credit", "grant", "alice", "5", "EUR"),
        ("balance", "bob"),
        ("budget", "show", "--all"),
    ):
        refused = await _koco(alice, address, *args)
        assert refused.exit_code == ec.DENIED.code, (args, refused.output)
    bad = await _koco(admin, address, "credit", "grant", "alice", "1e30", "EUR")
    assert bad.exit_code == ec.USAGE.code and "amount" in bad.output
    await node.Reserve(pb.ReserveRequest(account="alice", amount="3", currency="EUR", key="e2"))
    holds = await _koco(alice, address, "hold", "list", "--json")
    [open_hold] = [json.loads(line) for line in holds.stdout.splitlines()]
    assert (open_hold["payee"], open_hold["amount"]) == ("node/n1", "3")
    refused = await _koco(alice, address, "hold", "release", open_hold["hold_id"])
    assert refused.exit_code == ec.DENIED.code
    released = await _koco(admin, address, "hold", "release", open_hold["hold_id"])
    assert released.exit_code == 0 and "released" in released.stderr
    table = await _koco(alice, address, "hold", "list", "--all")
    assert "released" in table.stdout and "settled (1.25 paid)" in table.stdout
    cleared = await _koco(admin, address, "budget", "clear", "alice", "EUR")
    assert cleared.exit_code == 0 and "removed" in cleared.stderr
