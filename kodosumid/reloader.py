"""`kodosumid --reload` (development; off by default): a changed flow module or spec is
checked again and published, and the executors that ran the old code are replaced.

Executors keep the modules they imported (that is what makes a launch warm), so a standing
node serves the code it first loaded. With `--reload` the node polls the modification times
of every source file its catalog check saw each flow import (plus a spec file and a module
with a SyntaxError); on a change it re-checks the whole catalog (schemas, availability),
swaps the entries in, announces them to the registry and LAN peers, and asks the pool to
renew the executors that ran an affected flow: idle ones stop at once, busy ones finish
what they host first. A module a flow imports only while it runs is not watched.
Production nodes do none of this: they load a flow's code once per executor and pick up
new code on restart (docs/flows.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

from kodosumid.catalog import Catalog
from kodosumid.catalog_check import check_catalog
from kodosumid.config import FlowEntry

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


def mtimes(files: set[str]) -> dict[str, float]:
    """Modification times (-1: the file is gone)."""
    seen = {}
    for file in files:
        try:
            seen[file] = os.stat(file).st_mtime
        except OSError:
            seen[file] = -1.0
    return seen


class FlowReloader:
    def __init__(
        self,
        configured: Sequence[FlowEntry],
        python_path: Sequence[str],
        catalog: Catalog,
        files: Mapping[str, tuple[str, ...]],
        renew: Callable[[set[str]], int],
        poll_seconds: float = POLL_SECONDS,
        announce: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        # The entries as configured, before the check filled them in (so that a changed
        # signature gives a new schema).
        self.configured = tuple(configured)
        self.python_path = tuple(python_path)
        self.catalog = catalog
        self.files = dict(files)
        self.renew = renew
        # Tells the registry and LAN peers at once (they would notice within seconds anyway).
        self.announce = announce
        self.poll_seconds = poll_seconds
        self.seen = mtimes(self.watched)
        # How many reloads happened (tests and logs).
        self.reloads = 0

    @property
    def watched(self) -> set[str]:
        return {f for files in self.files.values() for f in files}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            now = mtimes(self.watched)
            changed = {f for f, t in now.items() if self.seen.get(f) != t}
            if changed:
                try:
                    await self.reload(changed)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reload after %s changed failed", ", ".join(sorted(changed)))
                    self.seen = now

    async def reload(self, changed: set[str]) -> None:
        affected = {name for name, files in self.files.items() if set(files) & changed}
        check = await check_catalog(self.configured, self.python_path)
        self.catalog.replace_all(check.flows)
        self.files = dict(check.files)
        self.seen = mtimes(self.watched)
        replaced = self.renew(affected)
        if self.announce is not None:
            await self.announce()
        self.reloads += 1
        broken = [f.name for f in check.broken]
        log.info(
            "reload: %s changed; flows %s checked again%s; %d executor(s) replaced",
            ", ".join(sorted(changed)),
            ", ".join(sorted(affected)),
            f" (unavailable: {', '.join(broken)})" if broken else "",
            replaced,
        )
