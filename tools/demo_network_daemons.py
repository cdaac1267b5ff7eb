"""The daemons of `make demo-network` (tools/demo_network.py) as processes: each one's log,
whether it still runs, and stopping them in order (nodes first, so they deregister)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

STOP_DEADLINE = 45.0


class DemoError(Exception):
    """The demo cannot go on; the message says why (and where the logs are)."""


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    log_file: IO[bytes] = field(repr=False)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in text[-lines:])

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise DemoError(f"{self.name} exited with code {code}; its log ends:\n{self.tail()}")


def stop_daemons(daemons: list[Daemon]) -> None:
    """SIGTERM the nodes (they deregister), then the registry; SIGKILL stragglers."""
    nodes = [d for d in daemons if d.name != "registryd"]
    registry = [d for d in daemons if d.name == "registryd"]
    for group in (nodes, registry):
        running = [d for d in group if d.process.poll() is None]
        if running:
            print("stopping " + ", ".join(d.name for d in running) + " (SIGTERM)", flush=True)
        for daemon in running:
            with contextlib.suppress(ProcessLookupError):
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in running:
            try:
                daemon.process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                print(f"{daemon.name} did not stop in {STOP_DEADLINE:.0f} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(daemon.process.pid, signal.SIGKILL)
                daemon.process.wait()
    for daemon in daemons:
        daemon.log_file.close()


def json_field(path: Path, key: str) -> str:
    """A field of a JSON file a daemon writes once it serves ("" while it is not there)."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    return str(data.get(key, "")) if isinstance(data, dict) else ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
