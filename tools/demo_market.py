"""`make demo-market`: the marketplace end to end — browse, quote, run, receipt, balance,
usage, badges — and a flow bought over MIP-003 with curl through `kodogate`.

Built on the network demo (tools/demo_network.py: its CA, registry, two nodes, daemon
handling) and the gateway demo's curl steps (tools/demo_gateway.py):

1. A CA issues the nodes', the user's, an admin's and the gateway's certificates. The
   registry starts with badge levels that a demo can earn in seconds and `--admin admin`;
   node-a sells `hello` (EUR 0.05 a run), node-b `countdown` (EUR 0.10 a run + 0.02 a second).
2. The admin grants the user EUR 5 of credit and a daily budget of EUR 2, and the gateway
   EUR 5 (it buys the runs it resells).
3. The user browses (`koco market`, `koco flows --all`), quotes `hello` on node-a and
   verifies the quote offline, runs it with the quote, runs `countdown` on node-b with
   `--max-cost`, fetches both receipts and verifies them offline, and sees the balance move by
   their amounts (`koco balance`, `koco ledger`, `koco usage`).
4. Once the registry has measured the runs, `koco market` shows the badges they earned and
   `koco verify` checks one.
5. `kodogate` sells node-a's `hello` as a MIP-003 service paid through the ledger: curl
   availability, input_schema, start_job (the user's API key) and status until completed.
6. Everything stops (SIGTERM, then SIGKILL), also on Ctrl-C or a failure.

Logs go to `<home>/logs/`; `--home DIR` (default .state/demo-market), `--keep-running`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the repo's packages first

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public  # noqa: E402
from kodosumi.spiffe import SpiffeId  # noqa: E402
from kodosumi.tls import local_user_name  # noqa: E402
from tools import demo_gateway  # noqa: E402
from tools.demo_network import DOMAIN, Network, demo_main, say  # noqa: E402
from tools.demo_network_configs import COUNTDOWN, HELLO  # noqa: E402
from tools.demo_network_daemons import DemoError, json_field  # noqa: E402

DEFAULT_HOME = ROOT / ".state" / "demo-market"
ADMIN = "admin"
GATEWAY_ID = "demo"
API_KEY = "demo-market-key"  # the user's API key at the gateway (its SHA-256 is configured)
GATEWAY_PRICE = Decimal("0.50")  # what the gateway charges for hello (node-a: 0.05 a run)
BADGE_DEADLINE = 30.0
SETTLE_DEADLINE = 15.0
GATEWAY_DEADLINE = 60.0

PRICED_HELLO = (
    HELLO
    + """
[flows.price]
currency = "EUR"
per_run = "0.05"
"""
)
PRICED_COUNTDOWN = (
    COUNTDOWN
    + """
[flows.price]
currency = "EUR"
per_run = "0.10"
per_second = "0.02"
"""
)
# Levels a demo earns within seconds; a real registry asks for many runs over a day.
REGISTRY_TOML = """
[badges]
window = 3600
lifetime = 3600
evaluate_interval = 1

[badges.levels.bronze]
success_rate = 0.5
min_runs = 1
"""


class Market:
    """The market demo over a `Network` (which owns the daemons and stops them)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.home = network.home
        self.user = local_user_name()

    # -- identities ----------------------------------------------------------------------

    def issue_identities(self) -> None:
        """The admin's certificate (<home>/admin) and the gateway's (its state directory)."""
        ca_cert, ca_key = self.network.ca_files
        ca = CertificateAuthority.load(ca_cert, ca_key)
        cert, key = ca.issue(SpiffeId.user(DOMAIN, ADMIN))
        folder = self.home / ADMIN
        folder.mkdir()
        write_public(folder / "cert.pem", cert_pem(cert))
        write_private(folder / "key.pem", key_pem(key))
        demo_gateway.write_identity(ca, self.home / "gateway" / "identity", GATEWAY_ID)
        print(f"certificates for admin {ADMIN!r} and gateway {GATEWAY_ID!r} issued from it")

    # -- koco ----------------------------------------------------------------------------

    async def koco(
        self, *args: str, node: str = "node-a", admin: bool = False, quiet: bool = False
    ) -> str:
        """Run `koco ARGS` (as the admin with `admin`), print the command and its output
        (unless `quiet`) and return the output; a failing command stops the demo."""
        identity: tuple[str, ...] = ()
        if admin:
            ca_cert = str(self.network.ca_files[0])
            folder = self.home / ADMIN
            cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
            identity = ("--ca", ca_cert, "--cert", cert, "--key", key)
        shown = " ".join(("koco", *identity, *args)).replace(str(self.home), "$DEMO")
        if not quiet:
            print(f"\n$ {shown}", flush=True)
        command = self.network.koco_command(*identity, *args)
        # A child of the event loop, not a blocking call: Ctrl-C (which cancels the demo's
        # task) is seen at once, and the child is killed rather than left behind.
        child = await asyncio.create_subprocess_exec(
            *command,
            cwd=ROOT,
            env=self.network.koco_env(node),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        lines: list[str] = []
        try:
            assert child.stdout is not None
            async for raw in child.stdout:  # live, as `koco run` shows a run's events
                lines.append(raw.decode(errors="replace"))
                if not quiet:
                    print(lines[-1], end="", flush=True)
            await child.wait()
        except BaseException:
            if child.returncode is None:
                child.kill()
                await child.wait()
            raise
        text = "".join(lines)
        if child.returncode:
            raise DemoError(f"koco {args[0]} failed (exit {child.returncode})")
        return text

    async def balance(self, quiet: bool = False) -> Decimal:
        """The user's posted EUR balance (koco balance --json)."""
        for line in (await self.koco("--json", "balance", quiet=quiet)).splitlines():
            row = json.loads(line)
            if row.get("currency") == "EUR":
                return Decimal(str(row["balance"]))
        return Decimal(0)

    async def receipt(self, execution_id: str, node: str) -> Decimal:
        """Fetch the run's receipt into <home>/<id>.receipt.json, verify it offline, and
        return its amount."""
        path = self.home / f"{execution_id}.receipt.json"
        await self.koco("receipt", execution_id, "-o", str(path), node=node)
        await self.koco("verify", str(path))
        return Decimal(str(json.loads(path.read_text())["receipt"]["amount"]))

    # -- the demo ------------------------------------------------------------------------

    async def admin_steps(self) -> None:
        say("the admin grants credit and sets the user's budget")
        await self.koco("credit", "grant", self.user, "5", "EUR", admin=True)
        await self.koco("budget", "set", self.user, "2", "EUR", "--period", "day", admin=True)
        await self.koco("credit", "grant", f"gateway/{GATEWAY_ID}", "5", "EUR", admin=True)

    async def buy_with_koco(self) -> None:
        say("browse the market: prices (badges come once runs are measured)")
        await self.koco("market", "--sort", "price")
        await self.koco("flows", "--all")

        say("a signed quote from node-a for hello, verified offline with the CA certificate")
        quote = self.home / "quote.json"
        await self.koco("quote", "hello", "-i", "name=market", "-o", str(quote))
        await self.koco("verify", str(quote))
        quote_id = str(json.loads(quote.read_text())["quote"]["jti"])

        say("run with the quote; then countdown on node-b with --max-cost (quotes first)")
        before = await self.balance()
        first = await self.run_id("run", "hello", "-i", "name=market", "--quote", quote_id)
        second = await self.run_id(
            "run", "countdown", "-i", "steps=3", "-i", "pause=0.3", "--max-cost", "1",
            node="node-b",
        )  # fmt: skip

        say("the receipts, verified offline: what each run used and cost")
        charged = await self.receipt(first, "node-a") + await self.receipt(second, "node-b")
        say("the balance moved by the receipts' amounts")
        after = await self.balance()
        await self.koco("ledger")
        await self.koco("budget", "show")
        print(f"\nbalance {before} -> {after}: moved by {before - after}, receipts {charged}")
        if before - after != charged:
            raise DemoError(f"the balance moved by {before - after}, the receipts say {charged}")
        print("balance moved by the receipts' amounts: ok")

        say("metered usage, by flow, on each node")
        await self.koco("usage", "--by", "flow")
        await self.koco("usage", "--by", "flow", node="node-b")

    async def run_id(self, *args: str, node: str = "node-a") -> str:
        """`koco run`, shown live; its execution id from `koco ls` afterwards."""
        await self.koco(*args, node=node)
        listing = await self.koco("--json", "ls", "--limit", "1", node=node)
        return str(json.loads(listing.splitlines()[0])["execution_id"])

    async def badges(self) -> None:
        say("badges earned from measured service (the registry measures every second)")

        def market() -> subprocess.CompletedProcess[str]:
            command = self.network.koco_command("--json", "market")
            env = self.network.koco_env()
            return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

        async def earned() -> bool:
            done = await asyncio.to_thread(market)
            levels = [json.loads(line).get("service", {}) for line in done.stdout.splitlines()]
            return sum(1 for s in levels if s.get("badge_level")) >= 2

        await self.network.wait_for("both priced flows hold a badge", earned, BADGE_DEADLINE)
        await self.koco("market", "--sort", "price")
        await self.koco("verify", "--node", "node-b", "--flow", "countdown")

    async def buy_over_mip003(self) -> None:
        say("kodogate sells node-a's hello over MIP-003, paid through the ledger")
        state = self.home / "gateway"
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        tail = [
            "[payments]",
            'backend = "ledger"',
            "poll_interval_seconds = 0.2",
            "[payments.ledger]",
            f'registry = "{self.network.registry_address}"',
            "[payments.ledger.purchasers]",
            f'"{digest}" = "user/{self.user}"',
            "[[services]]",
            'path = "hello"',
            'node = "node-a"',
            'flow = "hello"',
            'name = "Hello"',
            "[services.price]",
            f'amount = "{GATEWAY_PRICE}"',
            'currency = "EUR"',
        ]
        address = self.network.node_addresses["node-a"]
        config = self.home / "gateway.toml"
        config.write_text(demo_gateway.gateway_toml(state, "node-a", address, tail))
        command = ("serve", "--config", str(config))
        self.network.start("kodogate", "gateway", *command, shown="kodogate")

        async def serving() -> bool:
            return bool(json_field(state / "gateway.json", "url"))

        await self.network.wait_for("kodogate serves", serving, GATEWAY_DEADLINE)
        url = json_field(state / "gateway.json", "url")
        print(f"kodogate at {url}; the user's API key goes in the token header")
        before = await self.balance()
        body: dict[str, object] = {
            "identifier_from_purchaser": "demo-market-0001",
            "input_data": {"name": "MIP-003"},
        }
        status = await asyncio.to_thread(demo_gateway.buy, f"{url}/hello", body, API_KEY)
        if status != "completed":
            raise DemoError(f"the MIP-003 job ended {status}")
        print("MIP-003 job completed")
        say("the user paid the gateway its price; the gateway paid node-a the run")

        async def settled() -> bool:  # the gateway settles the user's hold as the job ends
            return await self.balance(quiet=True) == before - GATEWAY_PRICE

        await self.network.wait_for("the job's hold is settled", settled, SETTLE_DEADLINE)
        after = await self.balance()
        await self.koco("ledger", "--limit", "1")
        await self.koco("balance", f"gateway/{GATEWAY_ID}", admin=True)
        print(f"\nbalance {before} -> {after}: the service's price {GATEWAY_PRICE} EUR")


async def run(network: Network, keep_running: bool) -> int:
    market = Market(network)
    say(f"a CA and certificates ({network.home})")
    network.prepare()
    market.issue_identities()
    say("the registry (ledger, badge levels, admin 'admin') and two nodes with priced flows")
    await network.start_registry()
    await network.start_nodes()
    await market.admin_steps()
    await market.buy_with_koco()
    await market.badges()
    await market.buy_over_mip003()
    if keep_running:
        await network.keep_running("market")
    return 0


def market_network(home: Path) -> Network:
    """The network demo's, with priced flows, badge levels, an admin and the ledger."""
    return Network(
        home,
        flows={"node-a": PRICED_HELLO, "node-b": PRICED_COUNTDOWN},
        registry_toml=REGISTRY_TOML,
        registry_args=("--admin", ADMIN),
        registry_auth=True,
        marker=".demo-market",
    )


def main(argv: list[str] | None = None) -> int:
    return demo_main(argv, __doc__, "demo-market", DEFAULT_HOME, market_network, run)


if __name__ == "__main__":
    sys.exit(main())
