"""The real stack the gateway tests run on: a registry with its auth provider, a node on the
session's Ray (both in this process, mTLS on 127.0.0.1:0), and `kodogate` as a subprocess,
enrolled the real way (a one-time gateway token, `kodogate enroll`), reached over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from gateway.node_link import NodeLink
from kodosumi.authz import Principal
from kodosumi.pki import cert_pem, key_pem, write_private, write_public
from kodosumi.pricing import price_from_mapping
from kodosumi.spiffe import SpiffeId
from kodosumi.tls import TlsFiles
from kodosumid.app import NodeApp
from kodosumid.config import FlowEntry, TlsPaths
from registryd.config import AuthConfig
from registryd.daemon import RegistryDaemon
from tests.node.conftest import REPO, node_config
from tests.peers.conftest import NO_LAN, REGISTRY_LINK
from tests.registry.conftest import Pki, make_pki, registry_config

DOMAIN = "gateway.test"
ADMIN = "root"
GATEWAY_ID = "gw"

FLOWS = (
    FlowEntry(
        "hello",
        "tests.flowlib:hello",
        input_schema={
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64}},
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    FlowEntry("asks", "tests.flowlib:asks"),
    # A priced flow: the gateway launches it with a quote of the node.
    FlowEntry(
        "hello-priced",
        "tests.flowlib:hello",
        price=price_from_mapping({"currency": "EUR", "per_run": "0.01"}, "price"),
    ),
    FlowEntry("fails", "tests.flowlib:fails"),
    FlowEntry("report", "tests.gateway.flows:report"),
    FlowEntry("summary", "tests.gateway.flows:summary"),
    FlowEntry("sleepy", "tests.flowlib:sleepy"),
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


class Stack:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pki: Pki = make_pki(folder / "pki", DOMAIN)
        self.registry: RegistryDaemon | None = None
        self.node: NodeApp | None = None
        self.gateway_state = folder / "gateway"
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.config_path = folder / "gateway.toml"

    async def start_daemons(self, flows: tuple[FlowEntry, ...] = FLOWS) -> None:
        config = registry_config(self.folder / "registry", self.pki, shutdown_grace=0.2)
        self.registry = RegistryDaemon(replace(config, auth=AuthConfig(admins=(ADMIN,))))
        await self.registry.start()
        cert, key = self.pki.ca.issue(
            SpiffeId.node(DOMAIN, "seller"), dns_names=("localhost",), ip_addresses=("127.0.0.1",)
        )
        tls = TlsPaths(self.pki.ca_cert, self.folder / "seller.pem", self.folder / "seller.key")
        write_public(tls.cert, cert_pem(cert))
        write_private(tls.key, key_pem(key))
        node = node_config(
            self.folder / "seller",
            node_id="seller",
            flows=flows,
            tls=tls,
            registry_address=self.registry.address,
            registry=REGISTRY_LINK,
            discovery=NO_LAN,
        )
        self.node = NodeApp(node)
        await self.node.start()

    async def enroll_gateway(self) -> None:
        """A gateway token from the auth provider, redeemed by `kodogate enroll`."""
        assert self.registry is not None and self.registry.auth is not None
        admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin", "user"}))
        token, _ = await self.registry.auth.provider.create_token(
            admin, SpiffeId.gateway(DOMAIN, GATEWAY_ID)
        )
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "gateway",
                "enroll",
                token,
                "--state-dir",
                str(self.gateway_state),
            ],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(REPO)}

    def write_config(
        self,
        services: list[Mapping[str, Any]],
        payments: Mapping[str, Any] | None = None,
        masumi: Mapping[str, Any] | None = None,
        gateway: Mapping[str, Any] | None = None,
        ledger: Mapping[str, Any] | None = None,
    ) -> Path:
        assert self.node is not None
        lines = ["[gateway]", f'id = "{GATEWAY_ID}"', 'listen = "127.0.0.1:0"']
        lines.append(f'state_dir = "{self.gateway_state}"')
        lines += [f"{k} = {toml_value(v)}" for k, v in (gateway or {}).items()]
        lines += ["", "[nodes.seller]", f'address = "{self.node.address}"', 'node_id = "seller"']
        lines += ["", "[payments]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in (payments or {"backend": "free"}).items()]
        if masumi:
            lines += ["", "[payments.masumi]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in masumi.items()]
        if ledger:
            lines += ["", "[payments.ledger]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in ledger.items()]
        for service in services:
            lines += ["", "[[services]]"]
            lines += [
                f"{k} = {toml_value(v)}" for k, v in service.items() if not isinstance(v, dict)
            ]
            for k, v in service.items():
                if isinstance(v, dict):
                    lines += [f"[services.{k}]"]
                    lines += [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
        path = self.folder / "gateway.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start_gateway(self, config: Path, timeout: float = 90.0) -> str:
        (self.gateway_state / "gateway.json").unlink(missing_ok=True)
        with open(self.folder / "gateway.log", "a") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env(),
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.wait(timeout)
            raise AssertionError(
                f"kodogate did not start: {line!r}\n{(self.folder / 'gateway.log').read_text()}"
            )
        self.url = line.split("listening on", 1)[1].strip()
        return self.url

    def kill_gateway(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
                self.process.wait(30)
            if self.process.stdout is not None:
                self.process.stdout.close()
        self.process = None

    def gateway_link(self) -> NodeLink:
        """The node as the gateway sees it (its own identity): its executions, receipts."""
        identity = self.gateway_state / "identity"
        tls = TlsFiles(identity / "ca.pem", identity / "cert.pem", identity / "key.pem").read()
        assert self.node is not None
        return NodeLink("seller", self.node.address, tls)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0)

    async def stop(self) -> None:
        self.kill_gateway(signal.SIGTERM)
        if self.node is not None:
            await self.node.stop()
        if self.registry is not None:
            await self.registry.stop(grace=0)


async def wait_status(
    http: httpx.AsyncClient,
    prefix: str,
    job_id: str,
    wanted: set[str],
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Poll `/status` until the job is in one of `wanted` (with a deadline)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(f"{prefix}/status", params={"job_id": job_id})
        assert response.status_code == 200, response.text
        last = response.json()
        if last["status"] in wanted:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {wanted}: {last}")
