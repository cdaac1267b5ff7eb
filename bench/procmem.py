"""Proportional set size (PSS) of processes, from `/proc/<pid>/smaps_rollup`.

PSS charges each shared page to the processes sharing it in equal parts, so the PSS of a
group of processes adds up to what the group really occupies (RSS would count the shared
libraries of every Ray worker once per worker).
"""

from __future__ import annotations

from collections.abc import Iterable


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss line for pid {pid}")


def total_pss_mib(pids: Iterable[int]) -> float:
    return sum(pss_kib(pid) for pid in pids) / 1024
