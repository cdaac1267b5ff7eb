"""Named crash points on the drain -> store -> publish -> acknowledge path, for tests.

`KODOSUMI_CRASH_AT=after_store:3` makes the process exit abruptly (no cleanup, like a
SIGKILL) the third time it reaches `after_store`. Unset, `reach` is a dictionary lookup.
"""

from __future__ import annotations

import os

POINTS = ("after_drain", "after_store", "after_publish")
_ENV = "KODOSUMI_CRASH_AT"


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
