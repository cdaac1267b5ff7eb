"""Watches of the registry's change log: replay the changes after a revision, then follow
new ones as the feed announces them, so a client resumes after a disconnect without gaps or
repeats. Changes are read from the store (never held per watcher), in pages bounded in
count and bytes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from kodosumi.errors import InvalidArgument
from registryd.errors import RevisionCompacted, RevisionInFuture
from registryd.feed import ChangeFeed
from registryd.model import Change
from registryd.store import RegistryStore

# Changes per read of a watch, and their bytes: a watch stream holds one page (and the
# response made of it) while its client does not read. Flow changes carry their schemas, so
# the bytes bound the page; a single change larger than that goes alone (a registration is
# at most the 4 MiB a request may carry).
WATCH_BATCH = 64
WATCH_PAGE_BYTES = 256 * 1024


async def open_watch(store: RegistryStore, feed: ChangeFeed, after_revision: int) -> Watch:
    """Check where a watch starts (so errors come before the stream) and open it.

    `after_revision` 0 starts at the oldest change still kept.
    """
    if after_revision < 0:
        raise InvalidArgument.field("after_revision", "must not be negative")
    current = await store.revision()
    compacted = await store.compacted_revision()
    if after_revision > current:
        raise RevisionInFuture(after_revision, current)
    start = after_revision or compacted
    if start < compacted:
        raise RevisionCompacted(start, compacted)
    return Watch(store, feed, start, current)


class Watch:
    """An open watch: `start_revision` is where replay begins, `revision` the registry's
    revision when it opened. Iterate for batches of consecutive changes."""

    def __init__(
        self, store: RegistryStore, feed: ChangeFeed, start_revision: int, revision: int
    ) -> None:
        self.start_revision = start_revision
        self.revision = revision
        self._store = store
        self._feed = feed

    def __aiter__(self) -> AsyncGenerator[list[Change], None]:
        return self._follow(self.start_revision)

    async def _follow(self, after: int) -> AsyncGenerator[list[Change], None]:
        revision = after
        while True:
            changes = await self._store.changes_after(revision, WATCH_BATCH, WATCH_PAGE_BYTES)
            if changes:
                yield changes
                revision = changes[-1].revision
            elif revision >= self._feed.revision:
                await self._feed.wait_beyond(revision)
