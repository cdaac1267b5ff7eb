"""One client process of the fan-out bench: many watch streams, lag of every event.

    python -m bench.fanout_client ADDRESS CERT_DIR METHOD EXECUTION_ID STREAMS EXPECT OUT

Opens `STREAMS` streams of `METHOD` (the node's WatchExecution, or the raw server's) over
several connections, reads raw response bytes, parses each response once and records, for
every progress event, receive time minus the event's `time_unix_nano`. Writes the lags (ms),
how many streams got every event (`seq` 1..EXPECT gapless) and the first error to OUT.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import grpc

from kodosumi.v1 import flow_pb2

CHANNELS = 8


async def watch(
    channel: grpc.aio.Channel, method: str, execution_id: str, expect: int, lags: list[float]
) -> bool:
    call = channel.unary_stream(
        method,
        request_serializer=flow_pb2.WatchExecutionRequest.SerializeToString,
        response_deserializer=None,
    )(flow_pb2.WatchExecutionRequest(execution_id=execution_id), timeout=600)
    next_seq = 1
    async for raw in call:
        now = time.time_ns()
        for event in flow_pb2.WatchExecutionResponse.FromString(raw).events:
            if event.seq != next_seq:
                return False
            next_seq += 1
            if event.HasField("progress"):
                lags.append((now - event.time_unix_nano) / 1e6)
    return next_seq - 1 >= expect


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


async def main(argv: list[str]) -> None:
    address, cert_dir, method, execution_id, streams, expect, out = argv
    d = Path(cert_dir)
    ca, key, cert = ((d / name).read_bytes() for name in ("ca.pem", "client.key", "client.pem"))
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    channels = [
        grpc.aio.secure_channel(
            address,
            credentials,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024), ("bench.ch", i)],
        )
        for i in range(CHANNELS)
    ]
    lags: list[float] = []
    results = await asyncio.gather(
        *(
            watch(channels[i % CHANNELS], method, execution_id, int(expect), lags)
            for i in range(int(streams))
        ),
        return_exceptions=True,
    )
    complete = sum(1 for r in results if r is True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    _write(out, json.dumps({"lags": lags, "complete": complete, "error": errors[:1]}))
    for channel in channels:
        await channel.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
