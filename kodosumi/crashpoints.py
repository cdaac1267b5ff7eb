"""Named crash points for crash tests: a process armed through an environment variable exits
abruptly (no cleanup, like a SIGKILL) the Nth time it reaches a point.

`KODOSUMI_CRASH_AT=after_store:3` arms the node's drain path, `KODOSUMI_LEDGER_CRASH_AT=
settle_before_commit:2` the registry's ledger. Unarmed, `reach` is a dictionary lookup.
"""

from __future__ import annotations

import os

EXIT_CODE = 86


class CrashPoints:
    def __init__(self, env: str, points: tuple[str, ...]) -> None:
        self.env = env
        self.points = points
        self._armed = self._parse(os.environ.get(env, ""))

    def _parse(self, spec: str) -> dict[str, int]:
        armed: dict[str, int] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, count = item.partition(":")
            if name not in self.points:
                known = ", ".join(self.points)
                raise ValueError(f"{self.env}: unknown crash point {name!r} (known: {known})")
            armed[name] = int(count or 1)
        return armed

    def reach(self, point: str) -> None:
        armed = self._armed
        if not armed or point not in armed:
            return
        armed[point] -= 1
        if armed[point] <= 0:
            os._exit(EXIT_CODE)
