"""Where kodosumi keeps state on this machine when nothing else is configured."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

STATE_DIR_ENV = "KODOSUMI_HOME"


def default_state_dir() -> Path:
    """`$KODOSUMI_HOME`, else the per-user data directory (`~/.local/share/kodosumi` on Linux)."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("kodosumi", appauthor=False))
