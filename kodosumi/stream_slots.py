"""Open streams per identity: a daemon without the node's quota book (the registry) still
bounds how many long-lived streams one caller holds at once.

Each stream costs its server a bounded amount (one page, one response), so a cap on their
number per identity bounds what one caller can hold of the daemon. Exceeding it is
RESOURCE_EXHAUSTED with reason `QUOTA_OPEN_STREAMS` and a QuotaFailure naming the limit.
"""

from __future__ import annotations

from kodosumi.errors import QuotaExceeded


class StreamSlot:
    """One open stream of an identity; leaving the `with` block gives the slot back."""

    def __init__(self, slots: StreamSlots, identity: str) -> None:
        self._slots = slots
        self._identity = identity
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._slots._release(self._identity)

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamSlots:
    def __init__(self, limit: int) -> None:
        # 0: no limit.
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, identity: str) -> StreamSlot:
        """A slot for one more stream of `identity`, or QuotaExceeded."""
        count = self._open.get(identity, 0)
        if self.limit and count >= self.limit:
            raise QuotaExceeded(
                f"quota open_streams of {identity} is used up: limit {self.limit} (streams open)",
                quota="open_streams",
                limit=self.limit,
                subject=identity,
            )
        self._open[identity] = count + 1
        return StreamSlot(self, identity)

    def count(self, identity: str) -> int:
        return self._open.get(identity, 0)

    def _release(self, identity: str) -> None:
        left = self._open.get(identity, 0) - 1
        if left > 0:
            self._open[identity] = left
        else:
            self._open.pop(identity, None)
