"""What the node's observers learn about executions: launched, and each stored batch with
the status changes in it.

The executions domain reports here at the points where events become durable (launch, drain,
relay, a status the node writes itself), so metrics and alert rules see exactly what
watchers see, in the same order, after it is stored. Observers run on the event loop inside
the drain path: they must be quick and must not raise (`Observers` logs and swallows).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from kodosumid.event_store import AttemptUsage, ExecutionRecord, StatusChange

log = logging.getLogger(__name__)


class ExecutionObserver(Protocol):
    def launched(self, record: ExecutionRecord) -> None:
        """A launch was accepted (stored PENDING), here or relayed to a peer."""
        ...

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        """`events` events of the execution were stored; `changes` are the status changes
        among them, in order."""
        ...


class UsageObserver(Protocol):
    """An observer that also wants the usage of attempts as it is stored (metrics)."""

    def metered(self, record: ExecutionRecord, attempts: Sequence[AttemptUsage]) -> None: ...


class Observers:
    """Several observers as one; a failing observer never breaks the drain path."""

    def __init__(self, *observers: ExecutionObserver) -> None:
        self.observers = list(observers)

    def add(self, observer: ExecutionObserver) -> None:
        self.observers.append(observer)

    def launched(self, record: ExecutionRecord) -> None:
        for observer in self.observers:
            try:
                observer.launched(record)
            except Exception:
                log.exception("observer %r failed on launch", observer)

    def stored(self, record: ExecutionRecord, events: int, changes: Sequence[StatusChange]) -> None:
        for observer in self.observers:
            try:
                observer.stored(record, events, changes)
            except Exception:
                log.exception("observer %r failed on stored events", observer)

    def metered(self, record: ExecutionRecord, attempts: Sequence[AttemptUsage]) -> None:
        for observer in self.observers:
            tell_metered(observer, record, attempts)


def tell_metered(
    observer: ExecutionObserver, record: ExecutionRecord, attempts: Sequence[AttemptUsage]
) -> None:
    """Usage of attempts was stored: told to `observer` if it is a `UsageObserver`."""
    metered = getattr(observer, "metered", None)
    if metered is None:
        return
    try:
        metered(record, attempts)
    except Exception:
        log.exception("observer %r failed on usage", observer)
