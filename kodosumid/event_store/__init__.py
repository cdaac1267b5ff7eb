"""The node's event store: executions and their gapless event streams.

- `model`: what is stored (`ExecutionRecord`, `StatusChange`, `Page`) and the paging token.
- `store`: the `EventStore` Protocol every implementation holds, with the replay page bounds.
- `sqlite_store`: `SqliteEventStore`, the daemon's durable store (one SQLite file, WAL).
- `memory_store`: `MemoryEventStore`, in memory, for domain tests and throwaway nodes.
- `usage_model`: metered usage per attempt (`AttemptUsage`), its sums and summaries; kept by
  `sqlite_usage` and `memory_usage` for the two stores.

One contract suite (`tests/event_store/test_store_contract.py`) runs against both stores.
"""

from kodosumi.statuses import TERMINAL
from kodosumid.event_store.memory_store import MemoryEventStore
from kodosumid.event_store.model import (
    DuplicateExecution,
    ExecutionRecord,
    Page,
    StatusChange,
)
from kodosumid.event_store.sqlite_store import SYNCHRONOUS_MODES, SqliteEventStore
from kodosumid.event_store.store import REPLAY_PAGE_BYTES, REPLAY_PAGE_EVENTS, EventStore
from kodosumid.event_store.usage_model import (
    GROUP_KEYS,
    AttemptUsage,
    ModelUse,
    UsagePage,
    UsageQuery,
    UsageRow,
    UsageTotals,
)

__all__ = [
    "GROUP_KEYS",
    "REPLAY_PAGE_BYTES",
    "REPLAY_PAGE_EVENTS",
    "SYNCHRONOUS_MODES",
    "TERMINAL",
    "AttemptUsage",
    "DuplicateExecution",
    "EventStore",
    "ExecutionRecord",
    "MemoryEventStore",
    "ModelUse",
    "Page",
    "SqliteEventStore",
    "StatusChange",
    "UsagePage",
    "UsageQuery",
    "UsageRow",
    "UsageTotals",
]
