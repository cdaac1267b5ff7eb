"""Where the embedded Ray keeps its session (logs, sockets, spilled objects): in the node's
state directory, `<state>/ray/session`, not in the shared `/tmp/ray`; gone when the node
stops.

Ray's Unix sockets lie about 64 bytes below that folder
(`session_<date>_<time>_<µs>_<pid>/sockets/plasma_store`) and a socket path may not exceed
107 bytes: a state directory too deep for that gets a short private folder in the system's
temporary directory instead.

Sessions are Ray's, one per driver process, named with the driver's pid: a node removes its
own when it stops, and those of drivers that are gone (a node that was killed) when it
starts — never one a running process still uses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# The longest Unix socket path (108 bytes with the NUL on Linux), and how much Ray adds
# below its temp dir: `/session_2026-12-04_22-29-59_123456_<pid>/sockets/plasma_store`.
SOCKET_PATH_MAX = 107
SESSION_SUFFIX_BYTES = 66


def session_root(state_dir: Path) -> tuple[Path, bool]:
    """(the folder, whether it is private to this process): `<state>/ray/session` when
    Ray's socket paths fit below it, else a new private folder in the temporary directory."""
    preferred = state_dir.resolve() / "ray" / "session"
    if len(str(preferred).encode()) + SESSION_SUFFIX_BYTES <= SOCKET_PATH_MAX:
        preferred.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_stale(preferred)
        return preferred, False
    short = Path(tempfile.mkdtemp(prefix="kodosumi-ray-"))  # mode 0700
    log.info(
        "state directory %s is too deep for Ray's socket paths; its session is in %s",
        state_dir,
        short,
    )
    return short, True


def remove_stale(root: Path) -> None:
    """Remove the sessions of drivers that are gone (a node that was killed)."""
    for entry in root.glob("session_*"):
        if entry.name == "session_latest":
            if entry.is_symlink() and not entry.exists():
                entry.unlink(missing_ok=True)
            continue
        pid = entry.name.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def remove_own(root: Path, private: bool) -> None:
    """This process's session; the folder too when it is private or nothing else is left."""
    if private:
        shutil.rmtree(root, ignore_errors=True)
        return
    for entry in root.glob(f"session_*_{os.getpid()}"):
        shutil.rmtree(entry, ignore_errors=True)
    if not [e for e in root.glob("session_*") if e.name != "session_latest"]:
        shutil.rmtree(root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    with contextlib.suppress(OSError):
        # A zombie (exited, not yet reaped) uses nothing any more.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        return state != "Z"
    return True
