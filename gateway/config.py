"""The gateway's configuration: one TOML file (`kodogate --config gateway.toml`).

    [gateway]           id, listen address, state folder, public URL, body limit, node policy
    [tls]               the gateway's own credentials (default: what `kodogate enroll` wrote)
    [nodes.<name>]      the nodes it is a client of: address, expected node id
    [payments]          the payment backend (`ledger`, `masumi`, `free`) and its timing
    [payments.masumi]   the Masumi payment service: URL, API key (or the variable holding it)
    [[services]]        one MIP-003 service per exposed flow: path prefix, node, flow, price,
                        seller identifiers, demo data

Every mistake stops the start and names `file:line: key`. docs/gateway.md has the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.toml_reads import Reader, amount, keys, number, string, table
from kodosumi.config_loader import ConfigError, read_toml
from kodosumi.paths import default_state_dir

__all__ = [
    "BACKENDS",
    "ConfigError",
    "GatewayConfig",
    "LedgerSettings",
    "MasumiSettings",
    "NodeTarget",
    "Price",
    "ServiceConfig",
    "load_config",
]

BACKENDS = ("ledger", "masumi", "free")
NODE_DOWN_POLICIES = ("wait", "fail")
_PATH = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Price:
    """What one job costs: an amount of `unit` (Masumi: policy id + asset name, "" for
    lovelace) or of `currency` (the local ledger)."""

    amount: Decimal
    unit: str = ""
    currency: str = ""


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    path: str
    node: str
    flow: str
    name: str = ""
    description: str = ""
    price: Price | None = None
    agent_identifier: str = ""
    seller_vkey: str = ""
    demo_input: Mapping[str, Any] | None = None
    demo_output: str = ""

    @property
    def prefix(self) -> str:
        return f"/{self.path}"


@dataclass(frozen=True, slots=True)
class NodeTarget:
    address: str
    node_id: str = ""


@dataclass(frozen=True, slots=True)
class MasumiSettings:
    url: str = ""
    api_key: str = field(default="", repr=False)
    network: str = "Preprod"
    # How long a purchaser has to lock funds, and the seller to submit the result (seconds).
    pay_window_seconds: float = 12 * 3600
    submit_window_seconds: float = 24 * 3600


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """The registry's ledger (`[payments.ledger]`): where, and who pays."""

    registry: str = ""
    registry_id: str = ""
    hold_ttl_seconds: float = 3600.0
    # SHA-256 (hex) of a purchaser's API key -> the ledger account it pays from.
    purchasers: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    gateway_id: str = "gateway"
    listen: str = "127.0.0.1:8470"
    state_dir: Path = field(default_factory=lambda: default_state_dir() / "gateway")
    public_url: str = ""
    max_body_bytes: int = 1 << 20
    # A node that cannot be reached: jobs `wait` for it, or `fail` at once with the reason.
    node_down: str = "wait"
    node_wait_seconds: float = 300.0
    call_timeout_seconds: float = 10.0
    ca_cert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    nodes: Mapping[str, NodeTarget] = field(default_factory=dict)
    backend: str = "ledger"
    poll_interval_seconds: float = 2.0
    pay_timeout_seconds: float = 12 * 3600
    masumi: MasumiSettings = field(default_factory=MasumiSettings)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)
    services: tuple[ServiceConfig, ...] = ()

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def database(self) -> Path:
        return self.state_dir / "jobs.sqlite"

    @property
    def identity_dir(self) -> Path:
        return self.state_dir / "identity"


def _service(
    reader: Reader, index: int, data: Any, nodes: Mapping[str, NodeTarget]
) -> ServiceConfig:
    def fail_at(path: tuple[str, ...]) -> Any:
        def fail(key: str, message: str) -> ConfigError:
            where = reader.item_where(index, (*path, key))
            return ConfigError(f"{where}: services[{index}].{'.'.join((*path, key))}: {message}")

        return fail

    fail = fail_at(())
    if not isinstance(data, dict):
        raise ConfigError(f"{reader.toml.path}: services[{index}]: a table")
    allowed = {"path", "node", "flow", "name", "description", "price", "agent_identifier",
               "seller_vkey", "demo"}  # fmt: skip
    keys(data, allowed, fail, "services")
    for required in ("path", "flow"):
        if required not in data:
            raise fail(required, "required")
    path = string(data["path"], fail, "path").strip("/")
    if not _PATH.match(path):
        raise fail("path", "lower-case letters, digits, '-' and '_' (one path segment)")
    node = string(data.get("node", next(iter(nodes), "")), fail, "node")
    if node not in nodes:
        raise fail("node", f"no [nodes.{node}] table (known: {', '.join(sorted(nodes)) or 'none'})")
    price = None
    if "price" in data:
        raw = data["price"]
        pfail = fail_at(("price",))
        if not isinstance(raw, dict):
            raise fail("price", "a table (amount, unit or currency)")
        keys(raw, {"amount", "unit", "currency"}, pfail, "price")
        if "amount" not in raw:
            raise pfail("amount", "required")
        price = Price(
            amount(raw["amount"], pfail, "amount"),
            string(raw.get("unit", ""), pfail, "unit"),
            string(raw.get("currency", ""), pfail, "currency"),
        )
    demo_input, demo_output = None, ""
    if "demo" in data:
        demo = data["demo"]
        dfail = fail_at(("demo",))
        if not isinstance(demo, dict):
            raise fail("demo", "a table (input, output)")
        keys(demo, {"input", "output"}, dfail, "demo")
        if not isinstance(demo.get("input"), dict):
            raise dfail("input", "a table: example input_data")
        demo_input = demo["input"]
        demo_output = string(demo.get("output", ""), dfail, "output")
    return ServiceConfig(
        path=path,
        node=node,
        flow=string(data["flow"], fail, "flow"),
        name=string(data.get("name", ""), fail, "name"),
        description=string(data.get("description", ""), fail, "description"),
        price=price,
        agent_identifier=string(data.get("agent_identifier", ""), fail, "agent_identifier"),
        seller_vkey=string(data.get("seller_vkey", ""), fail, "seller_vkey"),
        demo_input=demo_input,
        demo_output=demo_output,
    )


def _ledger(reader: Reader, data: Mapping[str, Any], failer: Any) -> LedgerSettings:
    ledger = table(reader, data, ("payments", "ledger"))
    lfail = failer(("payments", "ledger"))
    keys(ledger, {"registry", "registry_id", "hold_ttl_seconds", "purchasers"}, lfail, "ledger")
    purchasers: dict[str, str] = {}
    raw = ledger.get("purchasers", {})
    if not isinstance(raw, dict):
        raise lfail("purchasers", "a table: SHA-256 of an API key = account")
    for digest, account in raw.items():
        if not re.match(r"^[0-9a-f]{64}$", digest):
            raise lfail("purchasers", f"{digest!r}: the SHA-256 (lower-case hex) of an API key")
        if not isinstance(account, str) or not re.match(
            r"^(user|node|gateway)/[A-Za-z0-9._-]{1,128}$", account
        ):
            raise lfail("purchasers", f"{digest[:12]}...: an account user/NAME")
        purchasers[digest] = account
    return LedgerSettings(
        registry=string(ledger.get("registry", ""), lfail, "registry"),
        registry_id=string(ledger.get("registry_id", ""), lfail, "registry_id"),
        hold_ttl_seconds=number(
            ledger.get("hold_ttl_seconds", 3600.0), lfail, "hold_ttl_seconds", 60, 7 * 86400
        ),
        purchasers=purchasers,
    )


def load_config(path: Path, env: Mapping[str, str] | None = None) -> GatewayConfig:
    """The configuration in `path`; the Masumi API key may come from the variable that
    `api_key_env` names (default `KODOGATE_MASUMI_API_KEY`), never only from the file."""
    env = os.environ if env is None else env
    toml = read_toml(path)
    reader = Reader(toml)
    data = toml.data
    top_fail = lambda key, message: ConfigError(f"{toml.path}: {key}: {message}")  # noqa: E731
    keys(data, {"gateway", "tls", "nodes", "payments", "services"}, top_fail, "")
    base = path.parent

    def failer(table: tuple[str, ...]) -> Any:
        def fail(key: str, message: str) -> ConfigError:
            return reader.fail(reader.table_where(table, key), ".".join((*table, key)), message)

        return fail

    gw = table(reader, data, ("gateway",))
    gfail = failer(("gateway",))
    keys(gw, {"id", "listen", "state_dir", "public_url", "max_body_bytes", "node_down",
               "node_wait_seconds", "call_timeout_seconds"}, gfail, "gateway")  # fmt: skip
    values: dict[str, Any] = {}
    if "id" in gw:
        values["gateway_id"] = string(gw["id"], gfail, "id")
    for key in ("listen", "public_url"):
        if key in gw:
            values[key] = string(gw[key], gfail, key)
    if "listen" in values and not re.match(r"^[^\s]+:\d{1,5}$", values["listen"]):
        raise gfail("listen", "host:port")
    if "state_dir" in gw:
        values["state_dir"] = base / string(gw["state_dir"], gfail, "state_dir")
    if "max_body_bytes" in gw:
        values["max_body_bytes"] = int(
            number(gw["max_body_bytes"], gfail, "max_body_bytes", 1024, 1 << 30)
        )
    if "node_down" in gw:
        values["node_down"] = string(gw["node_down"], gfail, "node_down")
        if values["node_down"] not in NODE_DOWN_POLICIES:
            raise gfail("node_down", "'wait' or 'fail'")
    for key, low, high in (("node_wait_seconds", 1, 86400 * 7), ("call_timeout_seconds", 0.1, 600)):
        if key in gw:
            values[key] = number(gw[key], gfail, key, low, high)

    tls = table(reader, data, ("tls",))
    tfail = failer(("tls",))
    keys(tls, {"ca_cert", "cert", "key"}, tfail, "tls")
    for key in ("ca_cert", "cert", "key"):
        if key in tls:
            values[key] = base / string(tls[key], tfail, key)

    nodes: dict[str, NodeTarget] = {}
    for name, raw in table(reader, data, ("nodes",)).items():
        nfail = failer(("nodes", name))
        if not isinstance(raw, dict):
            raise nfail("address", "a table")
        keys(raw, {"address", "node_id"}, nfail, "nodes")
        if "address" not in raw:
            raise nfail("address", "required")
        nodes[name] = NodeTarget(
            string(raw["address"], nfail, "address"),
            string(raw.get("node_id", ""), nfail, "node_id"),
        )
    values["nodes"] = nodes

    pay = table(reader, data, ("payments",))
    pfail = failer(("payments",))
    keys(pay, {"backend", "poll_interval_seconds", "pay_timeout_seconds", "masumi",
                "ledger"}, pfail, "payments")  # fmt: skip
    if "backend" in pay:
        values["backend"] = string(pay["backend"], pfail, "backend")
        if values["backend"] not in BACKENDS:
            raise pfail("backend", f"one of: {', '.join(BACKENDS)}")
    if "poll_interval_seconds" in pay:
        values["poll_interval_seconds"] = number(
            pay["poll_interval_seconds"], pfail, "poll_interval_seconds", 0.01, 3600
        )
    if "pay_timeout_seconds" in pay:
        values["pay_timeout_seconds"] = number(
            pay["pay_timeout_seconds"], pfail, "pay_timeout_seconds", 1, 86400 * 30
        )
    values["ledger"] = _ledger(reader, data, failer)
    masumi = table(reader, data, ("payments", "masumi"))
    mfail = failer(("payments", "masumi"))
    keys(masumi, {"url", "api_key", "api_key_env", "network", "pay_window_seconds",
                   "submit_window_seconds"}, mfail, "masumi")  # fmt: skip
    key_env = string(masumi.get("api_key_env", "KODOGATE_MASUMI_API_KEY"), mfail, "api_key_env")
    values["masumi"] = MasumiSettings(
        url=string(masumi.get("url", ""), mfail, "url").rstrip("/"),
        api_key=env.get(key_env) or string(masumi.get("api_key", ""), mfail, "api_key"),
        network=string(masumi.get("network", "Preprod"), mfail, "network"),
        pay_window_seconds=number(
            masumi.get("pay_window_seconds", 12 * 3600), mfail, "pay_window_seconds", 360, 2.6e6
        ),
        submit_window_seconds=number(
            masumi.get("submit_window_seconds", 24 * 3600),
            mfail,
            "submit_window_seconds",
            720,
            5.2e6,
        ),
    )
    if values.get("backend") == "masumi":
        if not values["masumi"].url:
            raise mfail("url", "required with backend = 'masumi'")
        if not values["masumi"].api_key:
            raise mfail("api_key", f"required with backend = 'masumi' (or ${key_env})")

    raw_services = data.get("services", [])
    if not isinstance(raw_services, list):
        raise ConfigError(f"{toml.path}: services: an array of tables ([[services]])")
    services = tuple(_service(reader, i, s, nodes) for i, s in enumerate(raw_services))
    seen: set[str] = set()
    for i, service in enumerate(services):
        if service.path in seen:
            where = reader.item_where(i, ("path",))
            raise ConfigError(f"{where}: services[{i}].path: {service.path!r} is used twice")
        seen.add(service.path)
        masumi_priced = values.get("backend") == "masumi" and service.price is not None
        if masumi_priced and not service.agent_identifier:
            where = reader.item_where(i, ("agent_identifier",))
            raise ConfigError(f"{where}: services[{i}].agent_identifier: required with Masumi")
    values["services"] = services
    return GatewayConfig(**values)
