"""A process that only runs LAN discovery (no node, no Ray), for the discovery tests.

    python -m tests.peers.lan_helper NODE_ID PORT

Advertises NODE_ID on 127.0.0.1 and prints one JSON line per peer seen or gone; on SIGTERM
it says goodbye on the LAN and exits.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from kodosumid.network.discovery import LanDiscovery
from kodosumid.network.peers import LanAnnouncement


def _print(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(node_id: str, port: int) -> None:
    def seen(a: LanAnnouncement) -> None:
        _print("seen", node_id=a.node_id, endpoints=list(a.endpoints), flows=a.flows_digest)

    discovery = LanDiscovery(
        node_id=node_id,
        port=port,
        interfaces=["127.0.0.1"],
        txt=lambda: {"id": node_id, "identity": "", "version": "helper", "flows": "f00d"},
        on_seen=seen,
        on_gone=lambda gone: _print("gone", node_id=gone),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await discovery.start()
    _print("started")
    await stop.wait()
    await discovery.stop()
    _print("stopped")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
