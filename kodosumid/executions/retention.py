"""Retention: deleting finished executions, on request and by age.

Only a finished execution is deleted (its events with it); a running one must be
cancelled first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from kodosumi.authz import Principal
from kodosumi.clock import Clock
from kodosumi.errors import FailedPrecondition
from kodosumid.event_store import EventStore
from kodosumid.executions.access import Access
from kodosumid.executions.live import LiveTable

log = logging.getLogger(__name__)

# Told of executions once they are deleted (their files go with them: kodosumid/files/).
DeletedHook = Callable[[Sequence[str]], Awaitable[object]]


class Retention:
    def __init__(self, store: EventStore, access: Access, live: LiveTable, clock: Clock) -> None:
        self.clock = clock
        self.store = store
        self.access = access
        self.live = live
        self.on_deleted: list[DeletedHook] = []

    async def _deleted(self, execution_ids: Sequence[str]) -> None:
        await self.store.delete_executions(list(execution_ids))
        for hook in self.on_deleted:
            try:
                await hook(execution_ids)
            except Exception:
                log.exception("after deleting executions")

    async def delete(self, principal: Principal, execution_id: str) -> None:
        record = await self.access.visible(principal, execution_id)
        if not record.terminal or execution_id in self.live:
            raise FailedPrecondition(
                f"execution {execution_id} has not ended; cancel it first",
                reason="EXECUTION_RUNNING",
            )
        await self._deleted([execution_id])

    async def expire(self, older_than_seconds: float) -> int:
        """Delete finished executions that ended more than `older_than_seconds` ago."""
        cutoff = self.clock.now_ns() - int(older_than_seconds * 1e9)
        deleted = 0
        while expired := await self.store.ended_before(cutoff):
            await self._deleted(expired)
            deleted += len(expired)
        return deleted

    async def keep_for(self, retention_seconds: float) -> None:
        """Background task: expire old executions every tenth of the retention (at most 60 s)."""
        pause = min(max(retention_seconds / 10, 1.0), 60.0)
        while True:
            try:
                if deleted := await self.expire(retention_seconds):
                    log.info("retention: deleted %d finished executions", deleted)
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(pause)
