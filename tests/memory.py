"""Memory of a daemon under test, read from /proc: what hostile, unread streams cost it."""

from __future__ import annotations

import asyncio


def rss(pid: int) -> int:
    """Resident set size of process `pid`, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def settled_rss(pid: int, *, samples: int = 4, interval: float = 0.25) -> int:
    """The lowest of a few samples: a baseline not caught mid-allocation."""
    low = rss(pid)
    for _ in range(samples - 1):
        await asyncio.sleep(interval)
        low = min(low, rss(pid))
    return low


async def peak_rss(pid: int, *, seconds: float = 5.0, interval: float = 0.25) -> int:
    """The highest sample over `seconds`: streams fill their windows, then stay blocked."""
    peak = rss(pid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        await asyncio.sleep(interval)
        peak = max(peak, rss(pid))
    return peak
