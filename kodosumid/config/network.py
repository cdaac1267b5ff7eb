"""The node among others: `[registry]` (its lease), `[discovery]` (zeroconf) and `[peers]`
(health checks, forwarding, relays)."""

from __future__ import annotations

from dataclasses import dataclass

from kodosumi.errors import InvalidArgument


@dataclass(frozen=True, slots=True)
class RegistryClientConfig:
    """How the node keeps its registry entry alive (`[registry]`; the address is separate)."""

    # Asked of the registry (its grant counts): the lease runs out after about three missed
    # heartbeats, so a dead node is OFFLINE within 3 x 5 s + the registry's sweep.
    heartbeat_interval: float = 5.0
    # While the registry is unreachable: jittered exponential backoff from/to these delays
    # (the cap bounds how late a node registers again after the registry or link is back).
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 10.0
    call_timeout_seconds: float = 5.0
    # Service statistics for the heartbeats are read from the event store at most this often
    # (heartbeats in between send the last report).
    stats_refresh_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """zeroconf LAN discovery (`[discovery]`). No interfaces: the one the node listens on."""

    enabled: bool = True
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PeersConfig:
    """Peer calls (`[peers]`): forwarding launches, health checks, relaying remote streams."""

    forward: bool = True
    # Liveness: every peer is health-checked this often; a check gets this long to answer.
    health_interval_seconds: float = 2.0
    health_timeout_seconds: float = 2.0
    # Peer links: keepalive pings on open connections, so that a silent dead link (a pulled
    # cable, a frozen host) breaks within keepalive + keepalive_timeout; a connection attempt
    # to a peer gives up after connect_timeout (and is retried at most that far apart).
    keepalive_seconds: float = 2.0
    keepalive_timeout_seconds: float = 2.0
    connect_timeout_seconds: float = 2.0
    # Launches, cancels and answers forwarded to a peer.
    call_timeout_seconds: float = 10.0
    # A relayed execution is PEER_LOST as soon as its peer does not answer, FAILED when the
    # peer stays unreachable this long.
    relay_grace_seconds: float = 30.0
    # Bytes of events one execution may store here, local or relayed (under [peers] for
    # history): a flow or a peer writing valid events forever would otherwise fill this
    # node's disk. Beyond it the run is cancelled (or the relay ends) and the execution is
    # FAILED with a reason naming the limit.
    max_execution_bytes: int = 1024 * 1024 * 1024
    # mDNS never says goodbye for a crashed host: a peer known from the LAN that failed its
    # checks this long (or at once, once the registry lists it OFFLINE or LEFT) is forgotten
    # by the LAN side (peer table and zeroconf cache); it is found again when it announces.
    lan_forget_seconds: float = 12.0

    def check(self) -> None:
        for name in (
            "lan_forget_seconds",
            "health_interval_seconds",
            "health_timeout_seconds",
            "keepalive_seconds",
            "keepalive_timeout_seconds",
            "connect_timeout_seconds",
            "call_timeout_seconds",
        ):
            value = getattr(self, name)
            if not 0.1 <= value <= 3600:
                raise InvalidArgument.field(f"peers.{name}", "seconds from 0.1 to 3600")
        if self.keepalive_seconds < 1.0:
            # Nodes accept client pings at most once a second (kodosumi/rpc/server.py).
            raise InvalidArgument.field("peers.keepalive_seconds", "at least 1 second")
        if not 0 <= self.relay_grace_seconds <= 86_400:
            raise InvalidArgument.field("peers.relay_grace_seconds", "seconds from 0 to 86400")
        if not 1024 * 1024 <= self.max_execution_bytes <= 1 << 50:
            raise InvalidArgument.field("peers.max_execution_bytes", "bytes from 1 MiB to 1 PiB")
