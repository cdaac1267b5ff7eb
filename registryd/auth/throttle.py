"""Enrollment throttling: failed attempts from one network address slow that address down.

An enrollment token is a bearer secret sent to a port that needs no certificate, so the port
is where guessing happens. Each address gets `free_failures` failed attempts; after that it
must wait before its next attempt, the wait doubling with each further failure up to
`max_backoff` seconds. Attempts during the wait are refused without looking at the token
(RESOURCE_EXHAUSTED, reason ENROLLMENT_THROTTLED). A success, or `forget_after` seconds
without failures, clears the address. The table is bounded (`max_addresses`, oldest out).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from kodosumi.errors import ResourceExhausted


class EnrollmentThrottled(ResourceExhausted):
    default_reason = "ENROLLMENT_THROTTLED"

    def __init__(self, address: str, wait: float) -> None:
        super().__init__(
            f"too many failed enrollments from {address}; retry in {math.ceil(wait)} s",
            metadata={"retry_after_seconds": str(math.ceil(wait))},
        )


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    not_before: float = 0.0


class EnrollmentThrottle:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        free_failures: int = 10,
        first_backoff: float = 0.5,
        max_backoff: float = 60.0,
        forget_after: float = 600.0,
        max_addresses: int = 10_000,
    ) -> None:
        self.clock = clock
        self.free_failures = free_failures
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.forget_after = forget_after
        self.max_addresses = max_addresses
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def check(self, address: str) -> None:
        """Raise EnrollmentThrottled while `address` has to wait."""
        record = self._records.get(address)
        if record is None:
            return
        now = self.clock()
        if now - record.last_failure > self.forget_after:
            del self._records[address]
            return
        if now < record.not_before:
            raise EnrollmentThrottled(address, record.not_before - now)

    def failed(self, address: str) -> None:
        now = self.clock()
        record = self._records.pop(address, None) or _Record()
        record.failures += 1
        record.last_failure = now
        over = record.failures - self.free_failures
        if over > 0:
            record.not_before = now + min(self.max_backoff, self.first_backoff * 2 ** (over - 1))
        self._records[address] = record
        while len(self._records) > self.max_addresses:
            self._records.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._records.pop(address, None)


def peer_host(peer: str) -> str:
    """`ipv4:10.0.0.7:51234` -> `10.0.0.7`, `ipv6:[::1]:5` -> `::1` (the port changes per
    connection, so it is not part of the address)."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return peer
    host = rest.rpartition(":")[0]
    return host.strip("[]") or rest
