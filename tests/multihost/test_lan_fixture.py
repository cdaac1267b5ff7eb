"""The namespace LAN itself: hosts reach each other on the bridge and nothing else, a pulled
cable cuts a host off and plugging it back heals, and closing leaves nothing behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.multihost.netns import Lan

LISTEN = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 7000)); s.listen()\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'hi'); c.close()\n"
)


def _connects(lan: Lan, src: int, dst: str, timeout: float = 1.0) -> bool:
    code = (
        "import socket, sys\n"
        f"s = socket.create_connection(('{dst}', 7000), timeout={timeout})\n"
        "sys.exit(0 if s.recv(2) == b'hi' else 1)\n"
    )
    return lan[src].run(sys.executable, "-c", code, timeout=10).returncode == 0


def _wait_ready(log: Path) -> None:
    deadline = time.monotonic() + 10
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "listener did not start"
        time.sleep(0.05)


def test_hosts_talk_over_the_bridge_and_nowhere_else(lan3: Lan, tmp_path: Path) -> None:
    log = tmp_path / "listener.log"
    lan3[1].spawn([sys.executable, "-c", LISTEN], env={}, cwd=tmp_path, log=log, stdout=None)
    _wait_ready(log)
    assert _connects(lan3, 0, lan3[1].address)
    assert _connects(lan3, 2, lan3[1].address)
    # Only the LAN's own /24 is routable from a host: no default route leads out.
    routes = lan3[0].run("ip", "route").stdout
    assert "default" not in routes and "10.213.0.0/24" in routes
    assert lan3[0].run("ip", "-o", "addr").stdout.count("inet ") == 2  # lo and eth0


def test_a_pulled_cable_cuts_a_host_off_until_plugged_back(lan3: Lan, tmp_path: Path) -> None:
    log = tmp_path / "listener.log"
    lan3[1].spawn([sys.executable, "-c", LISTEN], env={}, cwd=tmp_path, log=log, stdout=None)
    _wait_ready(log)
    lan3[1].link(up=False)
    assert not _connects(lan3, 0, lan3[1].address, timeout=0.5)
    lan3[1].link(up=True)
    deadline = time.monotonic() + 10
    while not _connects(lan3, 0, lan3[1].address):
        assert time.monotonic() < deadline, "the host did not come back"


def test_close_removes_processes_and_namespaces(lan_reason: str, tmp_path: Path) -> None:
    from tests.multihost.conftest import skip_without_lan

    skip_without_lan(lan_reason)
    lan = Lan(2)
    log = tmp_path / "listener.log"
    process = lan[0].spawn(
        [sys.executable, "-c", LISTEN], env={}, cwd=tmp_path, log=log, stdout=None
    )
    _wait_ready(log)
    assert lan.leftovers()
    lan.close()
    assert process.poll() is not None
    assert lan.leftovers() == []
    lan.close()  # twice is fine
