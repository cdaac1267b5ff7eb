"""Follow the auth provider's state: the revocation list the node's guard checks, and the
generation whose every change drops cached grants.

The provider pushes its state at once on every change (`WatchAuthState`), so a revocation
reaches the node within a network round trip. When the stream breaks the node keeps the
last list it had and reconnects with jittered backoff; cached grants still expire after
their TTL, so role changes hold within that bound even while the stream is down.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from kodosumi.errors import KodosumiError
from kodosumi.revocations import RevocationList
from kodosumi.v1 import auth_pb2 as pb
from kodosumid.network.backoff import Backoff, TimeSource

log = logging.getLogger(__name__)


class AuthStateSource(Protocol):
    def watch(self) -> AsyncIterator[pb.WatchAuthStateResponse]: ...


def apply_state(state: pb.WatchAuthStateResponse, revocations: RevocationList) -> None:
    revocations.replace(
        (int(serial, 16) for serial in state.revoked_serials),
        {r.identity: r.revoke_time.ToDatetime(dt.UTC) for r in state.revoked_identities},
    )


class AuthStateFollower:
    def __init__(
        self,
        source: AuthStateSource,
        revocations: RevocationList,
        on_change: Callable[[], None],
        backoff: Backoff | None = None,
        time: TimeSource | None = None,
    ) -> None:
        self.source = source
        self.revocations = revocations
        self.on_change = on_change
        self.backoff = backoff or Backoff(0.2, 10.0)
        self.time = time or TimeSource()
        self.generation = 0
        self.connected = False

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async for state in self.source.watch():
                    self.connected = True
                    attempt = 0
                    apply_state(state, self.revocations)
                    self.generation = state.generation
                    self.on_change()
                    log.debug("auth state generation %d applied", state.generation)
            except KodosumiError as e:
                log.warning("auth state stream broken (%s); keeping the last revocation list", e)
            self.connected = False
            # Whatever changed while the stream was down: do not trust cached grants.
            self.on_change()
            await self.time.sleep(self.backoff.delay(attempt, self.time.random))
            attempt += 1
