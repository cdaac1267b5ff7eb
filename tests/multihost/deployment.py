"""A kodosumi deployment on the namespace LAN, made only with the documented commands
(docs/operations.md, "Deploying on a LAN"): `koco pki init` on the registry host and the
`registryd` command it prints, `koco pki token` and `kodosumid --join TOKEN --listen
0.0.0.0:7470` on node hosts, `koco user add` / `koco login` for a person on a laptop.

Each host has its own HOME and KODOSUMI_HOME (state), as separate machines would; the
processes run this checkout (PYTHONPATH) with the console scripts of the running Python.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.multihost.netns import Host, Lan

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REGISTRY_PORT = 7460
NODE_PORT = 7470
# A flow only node B offers (node A runs the example flows): launched through A, relayed.
TICKER = "tests.peers.peerflows:ticker"
TICKER_NAME = "tests.peers.peerflows.ticker"


@dataclass
class Machine:
    """One host of the deployment: its namespace and its own home and state folders."""

    host: Host
    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        # Ray's offline marker (no cloud metadata probes) and a private home per machine.
        (home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
        self.env = {
            "PATH": f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": str(REPO),
            "HOME": str(home),
            "KODOSUMI_HOME": str(self.root / "kodosumi"),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_prestart_worker_first_driver": "0",
            "CREWAI_DISABLE_TELEMETRY": "true",
            "CREWAI_DISABLE_VERSION_CHECK": "true",
            "CREWAI_STORAGE_DIR": str(home / "crewai"),
            "LANG": "C.UTF-8",
        }

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def state(self) -> Path:
        return Path(self.env["KODOSUMI_HOME"])

    def run(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A documented command, as one would type it on this host."""
        return self.host.run(*shlex.split(command), timeout=timeout, env=self.env)

    def ok(self, command: str, timeout: float = 60) -> str:
        done = self.run(command, timeout)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stderr[-3000:]}"
        return done.stdout

    def json_lines(self, command: str, timeout: float = 60) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ok(command, timeout).splitlines() if line]

    def spawn(self, command: str, log: str, cwd: Path = REPO) -> subprocess.Popen[bytes]:
        return self.host.spawn(shlex.split(command), env=self.env, cwd=cwd, log=self.root / log)

    def spawn_output(self, command: str, log: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a command whose stdout is read while it runs (a `koco --json run`)."""
        out = self.root / f"{log}.out"
        with out.open("wb") as stdout:
            process = self.host.spawn(
                shlex.split(command), env=self.env, cwd=REPO, log=self.root / log, stdout=stdout
            )
        return process, out

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def wait_for(check: Any, what: str, timeout: float, interval: float = 0.2) -> float:
    """Poll `check()` until true; returns the seconds it took, fails after `timeout`."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def events_of(path: Path) -> list[dict[str, Any]]:
    """The events a `koco --json run/watch` printed so far."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and "seq" in item:
            out.append(item)
    return out


def status_of(event: dict[str, Any]) -> str:
    return str(event.get("status_changed", {}).get("status", "")).removeprefix("EXECUTION_STATUS_")


@dataclass
class Deployment:
    lan: Lan
    registry: Machine
    node_a: Machine
    node_b: Machine
    laptop: Machine
    # A host that runs only a Ray worker (test_ray_cluster.py): no kodosumi there.
    ray_worker: Machine
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # The `registryd` command `koco pki init` printed (run as printed, again after a stop).
    registry_command: str = ""

    @property
    def registry_address(self) -> str:
        return f"{self.registry.address}:{REGISTRY_PORT}"

    def start(self) -> None:
        # The registry host: a trust domain, and the registry command `pki init` prints.
        printed = self.registry.ok(
            "koco pki init --trust-domain lan.kodosumi --admin alice "
            f"--registry {self.registry_address}"
        )
        command = next(
            line.strip() for line in printed.splitlines() if line.strip().startswith("registryd ")
        )
        assert f"--advertise {self.registry_address}" in command, command
        self.registry_command = command
        self.start_registry()

        # Node hosts: a token each (made by the admin on the registry host), then --join.
        for name, machine, extra in (
            ("node-a", self.node_a, ""),
            ("node-b", self.node_b, f" --flow {TICKER}"),
        ):
            token = self.token(name, machine)
            self.processes[name] = machine.spawn(
                f"kodosumid --join {token} --listen 0.0.0.0:{NODE_PORT}{extra}", "kodosumid.log"
            )
        for name, machine in (("node-a", self.node_a), ("node-b", self.node_b)):
            info = machine.state / "node.json"
            wait_for(
                lambda info=info, name=name: info.exists() or self._died(name),
                f"{name} serving",
                120,
            )
            assert not self._died(name), machine.log("kodosumid.log")

        # A person on a laptop: an account made by the admin, `koco login` with its token.
        made = self.registry.ok(f"koco user add bob --registry {self.registry_address}")
        token = next(line for line in made.split() if line.startswith("kodo1."))
        self.laptop.ok(f"koco login {token}")
        self.laptop.ok("koco nodes use node-a")

    def start_registry(self) -> None:
        registry_json = self.registry.state / "registry" / "registry.json"
        self.processes["registryd"] = self.registry.spawn(self.registry_command, "registryd.log")
        wait_for(registry_json.exists, "registryd serving", 60)

    def stop_registry(self) -> None:
        process = self.processes["registryd"]
        process.terminate()
        process.wait(30)

    def token(self, node_id: str, machine: Machine) -> str:
        out = self.registry.ok(
            f"koco pki token --node {node_id} --registry {self.registry_address}"
        )
        return next(line for line in out.split() if line.startswith("kodo1."))

    def _died(self, name: str) -> bool:
        return self.processes[name].poll() is not None
