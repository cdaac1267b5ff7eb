"""registryd: the registry daemon. Nodes register and keep a lease by heartbeat; clients read.

Rooms: `model` (plain domain types), `registry` (the domain: leases, changes, watches),
`lease`, `changes`, `watch` and `paging` (its parts; `paging`: list pages bounded in
bytes), `store` with `memory_store` and `sqlite_store` (+ `sqlite_rows`, its row mapping)
(state), `feed` (wakes watchers), `validate` (request
rules), `policy` (who may call what), `codec` and `servicer` (the thin gRPC layer), `config`,
`credentials`, `daemon` and `cli` (the process); `service_stats` (heartbeat statistics
checked), `service_levels` (measured against badge levels) and `market` (the market view's
offer filters).
"""

from registryd.clock import Clock, ManualClock, SystemClock
from registryd.config import LeaseConfig, RegistryConfig, TlsConfig, load_config
from registryd.daemon import RegistryDaemon
from registryd.registry import Registry

__all__ = [
    "Clock",
    "LeaseConfig",
    "ManualClock",
    "Registry",
    "RegistryConfig",
    "RegistryDaemon",
    "SystemClock",
    "TlsConfig",
    "load_config",
]
