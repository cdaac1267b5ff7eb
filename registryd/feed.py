"""Wakes watchers when the change log grows.

The feed carries no changes, only the latest committed revision: a watcher that wakes up reads
the changes from the store itself. So watchers are gapless by construction, a slow watcher
costs no memory, and nothing is visible before it is durable (the registry publishes a
revision only after the store committed it).
"""

from __future__ import annotations

import asyncio

from registryd.errors import RegistryClosing


class ChangeFeed:
    def __init__(self, revision: int = 0) -> None:
        self._revision = revision
        self._advanced = asyncio.Event()
        self._closed = False

    @property
    def revision(self) -> int:
        return self._revision

    def publish(self, revision: int) -> None:
        """The store committed changes up to `revision`."""
        if revision > self._revision:
            self._revision = revision
            self._wake()

    def close(self) -> None:
        """Wake every watcher with RegistryClosing (shutdown)."""
        self._closed = True
        self._wake()

    async def wait_beyond(self, revision: int) -> int:
        """Wait until a revision above `revision` is committed; returns the latest."""
        while self._revision <= revision:
            if self._closed:
                raise RegistryClosing()
            await self._advanced.wait()
        return self._revision

    def _wake(self) -> None:
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()
