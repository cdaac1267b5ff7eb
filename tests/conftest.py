"""Test session setup: hermetic environment (own HOME, no telemetry, loopback only) and the
shared fixtures: one local Ray per session and real nodes on 127.0.0.1:0 with mTLS."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports ray or crewai: a private HOME (Ray's offline marker, CrewAI's
# storage, Ray's auth token) and the offline switches from RUNTIME-NOTES.
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="kodosumi-test-home-"))
(_SESSION_HOME / "ray_bootstrap_config.yaml").write_text("provider: {type: local}\n")
os.environ.update(
    {
        "HOME": str(_SESSION_HOME),
        "KODOSUMI_HOME": str(_SESSION_HOME / "kodosumi"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_prestart_worker_first_driver": "0",
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
        "CREWAI_STORAGE_DIR": str(_SESSION_HOME / "crewai"),
    }
)
