"""A LAN of several "hosts" on one Linux machine: network namespaces on a bridge.

    switch namespace  <prefix>-sw:  br0 ── h1 ── h2 ── h3 ...   (veth ends, no address)
    host namespaces   <prefix>-h1:  lo, eth0 10.213.0.11/24
                      <prefix>-h2:  lo, eth0 10.213.0.12/24  ...

Every link is made inside namespaces this module creates (a veth is created in the switch
namespace with its other end moved straight into the host's), so the root namespace's
interfaces are never touched and no traffic can leave: the host namespaces have no route
but their /24 on the bridge, and the switch namespace has no address at all.

`Lan.close()` removes everything even after a failure: the processes started here (by pid),
then any process still inside one of the namespaces (only processes started here can be
there), then the namespaces, which takes their links with them.

Needs root and `ip` (iproute2). `lan_unavailable()` says why a LAN cannot be built here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SUBNET = ipaddress.ip_network("10.213.0.0/24")
FIRST_HOST = 11
IP = shutil.which("ip") or ""


class LanError(RuntimeError):
    """A namespace, link or address could not be made."""


def _ip(*args: str, netns: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [IP, *(["-n", netns] if netns else []), *args]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=20)
    if check and done.returncode != 0:
        raise LanError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done


def lan_unavailable() -> str:
    """Why network namespaces cannot be made here ('' when they can): no root, no `ip`."""
    if not IP:
        return "the `ip` command (iproute2) is not installed: cannot build network namespaces"
    if os.geteuid() != 0:
        return "not root: network namespaces need root (CI runs the tests as root)"
    probe = f"ktprobe-{secrets.token_hex(3)}"
    done = _ip("netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"`ip netns add` failed: {done.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return ""


@dataclass
class Host:
    """One host of the LAN: a namespace with loopback and one address on the bridge."""

    name: str
    netns: str
    address: str
    switch_port: str
    lan: Lan
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(
        self, *args: str, timeout: float = 60, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in this host's namespace and wait for it."""
        return subprocess.run(
            [IP, "netns", "exec", self.netns, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=None if env is None else dict(env),
        )

    def spawn(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        stdout: int | IO[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a process in this host's namespace (its own session, so that a stop reaches
        the children it forks); `ip netns exec` execs it, so the pid is the process's own."""
        process = subprocess.Popen(
            [IP, "netns", "exec", self.netns, *args],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log.open("ab"),
            stderr=log.open("ab"),
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def link(self, up: bool) -> None:
        """Pull (or plug back) this host's cable: its port on the switch goes down (up)."""
        _ip("link", "set", self.switch_port, "up" if up else "down", netns=self.lan.switch)

    def pids(self) -> list[int]:
        done = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in done.stdout.split() if p.strip().isdigit()]


class Lan:
    def __init__(self, hosts: int, prefix: str | None = None) -> None:
        self.prefix = prefix or f"kt{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: list[Host] = []
        self._namespaces: list[str] = []
        try:
            self._build(hosts)
        except BaseException:
            self.close()
            raise

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("link", "set", "lo", "up", netns=name)

    def _build(self, count: int) -> None:
        self._add_netns(self.switch)
        _ip("link", "add", "br0", "type", "bridge", netns=self.switch)
        _ip("link", "set", "br0", "up", netns=self.switch)
        for index in range(1, count + 1):
            name = f"h{index}"
            netns = f"{self.prefix}-{name}"
            self._add_netns(netns)
            address = str(SUBNET.network_address + FIRST_HOST + index - 1)
            # The veth is born in the switch namespace with its peer moved into the host's.
            _ip(
                "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", netns,
                netns=self.switch,
            )  # fmt: skip
            _ip("link", "set", name, "master", "br0", netns=self.switch)
            _ip("link", "set", name, "up", netns=self.switch)
            _ip("addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0", netns=netns)
            _ip("link", "set", "eth0", "up", netns=netns)
            self.hosts.append(Host(name, netns, address, name, self))

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def close(self) -> None:
        """Stop every process started here, then anything left in the namespaces, then the
        namespaces (and with them their links). Safe to call twice."""
        for host in self.hosts:
            for process in host.processes:
                _stop(process.pid, process)
        for netns in self._namespaces:
            for pid in _pids_in(netns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        for netns in self._namespaces:
            while _pids_in(netns) and time.monotonic() < deadline:
                time.sleep(0.05)
        for netns in reversed(self._namespaces):
            _ip("netns", "del", netns, check=False)
        self._namespaces.clear()
        for host in self.hosts:
            for process in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1)

    def leftovers(self) -> list[str]:
        """Namespaces of this LAN that still exist (none after close)."""
        listed = _ip("netns", "list", check=False).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(self.prefix)]


def _pids_in(netns: str) -> list[int]:
    done = _ip("netns", "pids", netns, check=False)
    return [int(p) for p in done.stdout.split() if p.strip().isdigit()]


def _stop(pid: int, process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (a graceful stop), then SIGKILL its group (it leads its own
    session, so the group holds what it forked) once it stopped or after a few seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(8)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(3)
