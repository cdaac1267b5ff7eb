"""The node's place in the network: registry, LAN discovery, peers.

- `peer_network`: wires registration, the registry feed, zeroconf and peer health.
- `peers`: the peer table (one entry per peer, its source and liveness).
- `peer_client`, `peer_health`: calls to peers and their health probes.
- `discovery`: zeroconf `_kodosumi._tcp` announce and browse.
- `registration`, `registry_client`, `registry_feed`: the node's lease and the registry watch.
- `backoff`: jittered retry with injected time; `remote_errors`: a peer's status as a catalog
  error.
"""
