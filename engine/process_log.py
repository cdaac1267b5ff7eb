"""The executor process's own log (not a run's): JSON lines on the real stderr, which Ray
forwards to the node; the node logs them again in its own format
(kodosumid/executors/ray_output.py).

Records written while a run is current are that run's log events already
(`engine.capture`) and are left out here. WARNING and above of every logger, and kodosumi's
own INFO lines, are kept.
"""

from __future__ import annotations

import logging
import sys

from engine.capture import current_run
from kodosumi.logs import JsonFormatter

_installed = False


class _OutsideRuns(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if current_run() is not None:
            return False
        return record.levelno >= logging.WARNING or record.name.startswith("kodosumi")


def install() -> None:
    """Once per executor process."""
    global _installed
    if _installed:
        return
    # The real stderr: `engine.capture` replaces sys.stderr with a per-run router.
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_OutsideRuns())
    logging.getLogger().addHandler(handler)
    logging.getLogger("kodosumi").setLevel(logging.INFO)
    _installed = True
