"""Named crash points on the ledger's settlement write, for the crash tests.

`KODOSUMI_LEDGER_CRASH_AT=settle_before_commit:2` makes the registry exit abruptly (no
cleanup, like a SIGKILL) the second time a settlement has written its rows but not committed
them; `settle_after_commit` the time it committed but has not answered yet. Unset, `reach` is
a dictionary lookup. (The node's drain path has its own: `kodosumid/executions/crashpoints`.)
"""

from __future__ import annotations

import os

POINTS = ("settle_before_commit", "settle_after_commit")
_ENV = "KODOSUMI_LEDGER_CRASH_AT"


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS:
            raise ValueError(f"{_ENV}: unknown crash point {name!r} (known: {', '.join(POINTS)})")
        armed[name] = int(count or 1)
    return armed


_armed = _parse(os.environ.get(_ENV, ""))


def reach(point: str) -> None:
    if not _armed or point not in _armed:
        return
    _armed[point] -= 1
    if _armed[point] <= 0:
        os._exit(86)
