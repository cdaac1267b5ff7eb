"""`make demo-network`: a registry and two nodes on this machine, one trust domain.

1. Makes a CA (`<home>/ca/`) and issues from it the certificates of node A, node B and the
   local user (`<home>/pki/`, where `koco` looks for client credentials).
2. Starts `registryd --ca-cert/--ca-key` with that CA, then both nodes with a `[tls]`
   section naming their certificates and `--registry`. Node B offers `countdown`, which
   node A lacks.
3. Polls (with deadlines) until both nodes are ONLINE in the registry and node A has
   checked B and learned its flows.
4. Runs `koco nodes`, `koco flows --all`, `koco peers` and `koco run countdown` against
   node A: A forwards the launch to B and relays B's events, shown live.
5. Stops everything with SIGTERM (nodes first, so they deregister), also on Ctrl-C or a
   failure; a daemon that does not stop in time gets SIGKILL.

Daemon logs go to `<home>/logs/`. Run it as `.venv/bin/python tools/demo_network.py`
(`--home DIR`, `--keep-running` to leave the network up until Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the repo's packages first

from kodoclient import AsyncClient, ConnectConfig, KodoclientError  # noqa: E402
from kodoclient.auth import RegistryTarget  # noqa: E402
from kodoclient.registry import RegistryClient  # noqa: E402
from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public  # noqa: E402
from kodosumi.spiffe import SpiffeId  # noqa: E402
from kodosumi.tls import TlsFiles, TlsMaterial, dev_client_files, local_user_name  # noqa: E402
from kodosumi.v1 import node_pb2  # noqa: E402
from kodosumi.v1 import registry_pb2 as rpb  # noqa: E402
from tools.demo_network_configs import COUNTDOWN, HELLO, node_toml  # noqa: E402
from tools.demo_network_daemons import (  # noqa: E402
    Daemon,
    DemoError,
    alive,
    json_field,
    stop_daemons,
)

DEFAULT_HOME = ROOT / ".state" / "demo-network"
MARKER = ".demo-network"
DOMAIN = "demo.kodosumi"
NODES = ("node-a", "node-b")
REMOTE_FLOW = "countdown"
# Seconds each stage may take on a small machine (two embedded Ray clusters start at once).
REGISTRY_DEADLINE = 30.0
NODES_DEADLINE = 180.0
PEERS_DEADLINE = 60.0
POLL_INTERVAL = 0.2
# Variables that would point the daemons or koco elsewhere than this demo.
_FOREIGN_ENV = (
    "KODOSUMI_NODE",
    "KODOSUMI_NODE_ID",
    "KODOSUMI_LISTEN",
    "KODOSUMI_INSECURE",
    "KODOSUMI_REGISTRY",
    "KODOSUMI_RAY_ADDRESS",
    "RAY_ADDRESS",
)


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def demo_flows() -> dict[str, str]:
    """The flows of each node (catalog TOML): node B offers countdown, node A does not."""
    return {"node-a": HELLO, "node-b": HELLO + COUNTDOWN}


@dataclass
class Network:
    home: Path
    python: str = sys.executable
    # What a demo built on this one changes: each node's flows (TOML), more node settings,
    # the registry's TOML (`--config`) and more of its arguments, the home's marker file.
    flows: dict[str, str] = field(default_factory=demo_flows)
    node_extra: str = ""
    registry_toml: str = ""
    registry_args: tuple[str, ...] = ()
    # Nodes ask the registry as their auth provider (roles, its ledger for priced runs).
    registry_auth: bool = False
    marker: str = MARKER
    daemons: list[Daemon] = field(default_factory=list)
    registry_address: str = ""
    node_addresses: dict[str, str] = field(default_factory=dict)

    # -- files ---------------------------------------------------------------------------

    @property
    def ca_files(self) -> tuple[Path, Path]:
        return self.home / "ca" / "ca.pem", self.home / "ca" / "ca.key"

    @property
    def client_files(self) -> TlsFiles:
        """Where `koco --state-dir <home>` (here: KODOSUMI_HOME) finds its credentials."""
        return dev_client_files(self.home)

    def prepare(self) -> None:
        """A fresh home: a CA, certificates for both nodes and the user, node configs."""
        if self.home.exists():
            if not (self.home / self.marker).exists():
                raise DemoError(f"{self.home} exists and is not a demo home; pick another --home")
            self._refuse_if_running()
            shutil.rmtree(self.home)
        (self.home / "logs").mkdir(parents=True)
        (self.home / self.marker).write_text("state of a kodosumi demo; removed on the next run\n")
        ca_cert, ca_key = self.ca_files
        ca_cert.parent.mkdir(mode=0o700)
        ca = CertificateAuthority.create(DOMAIN, ca_cert, ca_key)
        client = self.client_files
        client.cert.parent.mkdir()
        user_cert, user_key = ca.issue(SpiffeId.user(DOMAIN, local_user_name()))
        write_public(client.ca_cert, cert_pem(ca.cert))
        write_public(client.cert, cert_pem(user_cert))
        write_private(client.key, key_pem(user_key))
        for node_id in NODES:
            folder = self.home / node_id
            (folder / "tls").mkdir(parents=True)
            cert, key = ca.issue(
                SpiffeId.node(DOMAIN, node_id),
                dns_names=("localhost",),
                ip_addresses=("127.0.0.1",),
            )
            write_public(folder / "tls" / "node.pem", cert_pem(cert))
            write_private(folder / "tls" / "node.key", key_pem(key))
            config = node_toml(node_id) + self.node_extra + self.flows[node_id]
            (self.home / f"{node_id}.toml").write_text(config)
        print(f"CA of trust domain {DOMAIN}: {ca_cert}")
        print(f"certificates for {', '.join(NODES)} and user {local_user_name()} issued from it")

    def _refuse_if_running(self) -> None:
        for info in self.home.glob("*/*.json"):
            if info.name not in ("node.json", "registry.json"):
                continue
            with contextlib.suppress(OSError, ValueError, TypeError):
                pid = int(json.loads(info.read_text()).get("pid") or 0)
                if pid and alive(pid):
                    raise DemoError(
                        f"a daemon of an earlier demo still runs (pid {pid}, {info}); stop it first"
                    )

    # -- processes -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env["KODOSUMI_HOME"] = str(self.home)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
        return env

    def start(self, name: str, module: str, *args: str, shown: str = "") -> Daemon:
        log = self.home / "logs" / f"{name}.log"
        log_file = log.open("wb")
        command = [self.python, "-m", module, *args]
        line = " ".join([shown or module, *args]).replace(str(self.home), "$DEMO")
        print(f"$ {line}", flush=True)
        # A session of its own: Ctrl-C reaches only this script, which stops the daemons in
        # order; and the daemon's Ray processes share its process group.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        daemon = Daemon(name, process, log, log_file)
        self.daemons.append(daemon)
        return daemon

    def check_running(self) -> None:
        for daemon in self.daemons:
            daemon.check_running()

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], deadline: float
    ) -> None:
        """Poll `check` until it holds; fail when a daemon exits or the deadline passes."""
        print(f"waiting until {what} ...", flush=True)
        started = time.monotonic()
        while True:
            self.check_running()
            if await check():
                print(f"  ok after {time.monotonic() - started:.1f} s", flush=True)
                return
            if time.monotonic() - started > deadline:
                logs = ", ".join(str(d.log) for d in self.daemons)
                raise DemoError(f"not within {deadline:.0f} s: {what} (logs: {logs})")
            await asyncio.sleep(POLL_INTERVAL)

    async def keep_running(self, try_command: str) -> None:
        """Until Ctrl-C (or a daemon exits): say how to reach the network with koco."""
        say("the daemons keep running; Ctrl-C stops them")
        print(f"try: KODOSUMI_HOME={self.home} KODOSUMI_NODE={self.node_addresses['node-a']}")
        print(f"     KODOSUMI_REGISTRY={self.registry_address} koco {try_command}")
        while True:
            self.check_running()
            await asyncio.sleep(POLL_INTERVAL)

    def stop(self) -> None:
        """SIGTERM the nodes (they deregister), then the registry; SIGKILL stragglers."""
        stop_daemons(self.daemons)

    # -- the demo ------------------------------------------------------------------------

    def user_tls(self) -> TlsMaterial:
        return self.client_files.read()

    async def start_registry(self) -> None:
        ca_cert, ca_key = self.ca_files
        state = self.home / "registry"
        config: tuple[str, ...] = ()
        if self.registry_toml:
            (self.home / "registry.toml").write_text(self.registry_toml)
            config = ("--config", str(self.home / "registry.toml"))
        self.start(
            "registryd",
            "registryd",
            *config,
            *self.registry_args,
            "--state-dir",
            str(state),
            "--listen",
            "127.0.0.1:0",
            "--registry-id",
            "demo",
            "--ca-cert",
            str(ca_cert),
            "--ca-key",
            str(ca_key),
        )

        async def serving() -> bool:
            self.registry_address = json_field(state / "registry.json", "address")
            return bool(self.registry_address)

        await self.wait_for("the registry serves", serving, REGISTRY_DEADLINE)
        print(f"registry at {self.registry_address}")

    async def start_nodes(self) -> None:
        for node_id in NODES:
            config = self.home / f"{node_id}.toml"
            if self.registry_auth:  # known once the registry serves (it picks its port)
                with config.open("a") as toml:
                    toml.write(f'\n[auth]\naddress = "{self.registry_address}"\n')
            self.start(
                node_id,
                "kodosumid",
                "--config",
                str(config),
                "--registry",
                self.registry_address,
                "--no-lan",
            )
        target = RegistryTarget(self.registry_address, self.user_tls(), 5.0)
        async with RegistryClient(target) as registry:

            async def registered() -> bool:
                try:
                    listing = await registry.list_nodes(states=[rpb.REGISTERED_NODE_STATE_ONLINE])
                except KodoclientError:
                    return False
                return {n.node_id for n in listing.nodes} >= set(NODES)

            await self.wait_for("both nodes are ONLINE in the registry", registered, NODES_DEADLINE)
        for node_id in NODES:
            self.node_addresses[node_id] = json_field(self.home / node_id / "node.json", "address")

        # Node A learns B and its flows from the registry, then checks B itself.
        node_a = ConnectConfig(target=self.node_addresses["node-a"], tls=self.user_tls())
        async with AsyncClient(node_a) as client:

            async def a_knows_b() -> bool:
                try:
                    peers = await client.peers()
                except KodoclientError:
                    return False
                return any(
                    p.node_id == "node-b"
                    and p.liveness == node_pb2.PEER_LIVENESS_ALIVE
                    and REMOTE_FLOW in p.flow_names
                    for p in peers
                )

            await self.wait_for(
                f"node-a has checked node-b and knows its flow {REMOTE_FLOW!r}",
                a_knows_b,
                PEERS_DEADLINE,
            )

    def koco(self, *args: str, node: str = "node-a") -> int:
        """Run `koco ARGS` against `node` (output straight to this terminal)."""
        print(f"\n$ koco {' '.join(args)}", flush=True)
        return subprocess.run(
            self.koco_command(*args), env=self.koco_env(node), check=False
        ).returncode

    def koco_command(self, *args: str) -> list[str]:
        return [self.python, "-m", "kodoclient", *args]

    def koco_env(self, node: str = "node-a") -> dict[str, str]:
        env = self.env()
        env["KODOSUMI_NODE"] = self.node_addresses[node]
        env["KODOSUMI_REGISTRY"] = self.registry_address
        return env


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # SIGTERM to the demo: clean up as for Ctrl-C


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # asyncio.run's own handler only cancels the main task, which a step may swallow.
    raise KeyboardInterrupt


async def run(network: Network, keep_running: bool) -> int:
    say(f"a CA and certificates ({network.home})")
    network.prepare()
    say("the registry, with the demo CA")
    await network.start_registry()
    say("two nodes (node-b offers countdown, node-a does not); each starts an embedded Ray")
    await network.start_nodes()
    for node_id, address in network.node_addresses.items():
        print(f"{node_id} at {address}")

    say("the network, as the registry sees it")
    failed = network.koco("nodes") or network.koco("flows", "--all")
    say("node-a's peers, by its own health checks")
    failed = failed or network.koco("peers")
    say(f"run {REMOTE_FLOW} through node-a: it forwards the launch to node-b, relays its events")
    failed = failed or network.koco("run", REMOTE_FLOW, "-i", "steps=8", "-i", "pause=0.4")
    if failed:
        raise DemoError(f"a koco command failed (exit {failed})")
    if keep_running:
        await network.keep_running("watch-registry")
    return 0


def demo_main(
    argv: list[str] | None,
    doc: str | None,
    name: str,
    default_home: Path,
    make: Callable[[Path], Network],
    demo: Callable[[Network, bool], Coroutine[Any, Any, int]],
) -> int:
    """What a demo script's `main` does: `--home`, `--keep-running`, run `demo` on the
    network `make` builds, and stop every daemon whatever happens (Ctrl-C, SIGTERM, failure)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else "")
    parser.add_argument("--home", type=Path, default=default_home, help="demo state (wiped)")
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the daemons up until Ctrl-C"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _interrupt)  # asyncio.run keeps a handler it finds set
    network = make(args.home.expanduser().resolve())
    started = time.monotonic()
    code = 1
    try:
        code = asyncio.run(demo(network, args.keep_running))
    except DemoError as e:
        print(f"\n{name}: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        say("stopping the daemons")
        network.stop()
    if code == 0:
        took = time.monotonic() - started
        print(f"done in {took:.0f} s; logs in {network.home / 'logs'}")
    return code


def main(argv: list[str] | None = None) -> int:
    return demo_main(argv, __doc__, "demo-network", DEFAULT_HOME, Network, run)


if __name__ == "__main__":
    sys.exit(main())
