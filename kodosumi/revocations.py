"""The revocation list a server checks callers against, and how open streams learn of changes.

Serials and identities whose certificates are no longer accepted. An identity maps to the
time it was revoked: its certificates valid from then or before are refused, later ones
(issued after a new enrollment) are accepted. None revokes every certificate of the identity.

Every `replace` wakes `wait_changed()`, so the guard can end streams that are already open
when their caller is revoked (`kodosumi.rpc.stream_guard`), not only refuse new calls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping

from cryptography import x509

from kodosumi.spiffe import SpiffeId


class RevocationList:
    def __init__(self) -> None:
        self.serials: frozenset[int] = frozenset()
        self.identities: Mapping[str, dt.datetime | None] = {}
        self._waiters: set[asyncio.Future[None]] = set()

    def replace(
        self,
        serials: Iterable[int],
        identities: Iterable[str] | Mapping[str, dt.datetime | None],
    ) -> None:
        revoked = (
            dict(identities) if isinstance(identities, Mapping) else dict.fromkeys(identities, None)
        )
        self.serials, self.identities = frozenset(serials), revoked
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            # Lists are replaced on the serving loop; a thread-safe wake costs nothing here.
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)

    async def wait_changed(self) -> None:
        """Return after the next `replace`."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)

    def is_revoked(self, cert: x509.Certificate, identity: SpiffeId) -> bool:
        if cert.serial_number in self.serials:
            return True
        key = str(identity)
        if key not in self.identities:
            return False
        since = self.identities[key]
        return since is None or cert.not_valid_before_utc <= since


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
