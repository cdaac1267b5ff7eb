"""A private, offline environment for a benchmark run (the same switches as the tests).

Must be entered before anything imports ray or crewai: Ray reads its settings from the
environment at import and start-up, and writes its auth token and session files under
`$HOME` and `$RAY_TMPDIR`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_ROOT: Path | None = None


def enter() -> Path:
    """Point HOME, KODOSUMI_HOME and Ray's temp dir at a fresh private folder; returns it."""
    global _ROOT
    if _ROOT is not None:
        return _ROOT
    # Short: Ray puts unix sockets under RAY_TMPDIR and their paths must stay < 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
    home = root / "home"
    home.mkdir()
    (home / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
    (root / "ray").mkdir()
    os.environ.update(
        {
            "HOME": str(home),
            "KODOSUMI_HOME": str(home / "kodosumi"),
            "RAY_TMPDIR": str(root / "ray"),
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_prestart_worker_first_driver": "0",
            "CREWAI_DISABLE_TELEMETRY": "true",
            "CREWAI_DISABLE_VERSION_CHECK": "true",
            "CREWAI_STORAGE_DIR": str(home / "crewai"),
            # gRPC core's INFO lines (fork handlers, handshakes) would drown the tables.
            "GRPC_VERBOSITY": "ERROR",
        }
    )
    _ROOT = root
    # Also for scripts that never call leave(); registered before Ray's own exit hook, so
    # it runs after Ray has shut down (exit hooks run last-registered first).
    atexit.register(leave)
    return root


def scratch(prefix: str) -> Path:
    """A fresh folder inside the private root (removed with it)."""
    root = enter()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def leave() -> None:
    """Remove the private folder (after Ray has stopped)."""
    global _ROOT
    if _ROOT is not None:
        shutil.rmtree(_ROOT, ignore_errors=True)
        _ROOT = None
