"""What a streaming call of a guarded server watches while it is open: its caller's
certificate against the revocation list (kodosumi/rpc/guard.py serves the stream).

The serving task is cancelled by a revocation only while it waits for its next response; a
stream caught while gRPC sends ends before its next response instead (`enter`/`leave`).
"""

from __future__ import annotations

import asyncio

from cryptography import x509

from kodosumi.errors import Unauthenticated
from kodosumi.revocations import RevocationList
from kodosumi.spiffe import SpiffeId


class Unwatched:
    """The watch of a stream without a certificate to revoke (plaintext)."""

    def enter(self) -> None:
        pass

    def leave(self) -> None:
        pass


UNWATCHED = Unwatched()


class RevocationWatch:
    """Cancels the task serving a stream once its caller's certificate is revoked.

    One small task per open stream waits for revocation-list changes (pushed by the auth
    provider, so the stream ends within the push's delay, not at its next message).
    """

    def __init__(
        self, revocations: RevocationList, cert: x509.Certificate, identity: SpiffeId
    ) -> None:
        self.revocations = revocations
        self.cert = cert
        self.identity = identity
        self.revoked = False
        # Whether the serving task waits inside the stream now (so a cancel lands there);
        # writer-style handlers (`context.write`) are always cancelled.
        self.waiting = True
        self._serving = asyncio.current_task()
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while not self.revocations.is_revoked(self.cert, self.identity):
            await self.revocations.wait_changed()
        self.revoked = True
        if self._serving is not None and self.waiting:
            self._serving.cancel()

    def enter(self) -> None:
        """The stream waits for its next response now: a revocation may cancel the wait."""
        self._check()
        self.waiting = True

    def leave(self) -> None:
        """It has a response (gRPC sends it next): no cancel from here, and none sent to a
        caller revoked meanwhile."""
        self.waiting = False
        self._check()

    def _check(self) -> None:
        if self.revoked:
            raise Unauthenticated(
                f"certificate of {self.identity} was revoked while the stream was open",
                reason="REVOKED",
            )

    def close(self) -> None:
        self._task.cancel()
