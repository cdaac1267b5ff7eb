"""Proportional set size (PSS) of processes, from `/proc/<pid>/smaps_rollup`.

PSS charges each shared page to the processes sharing it in equal parts, so the PSS of a
group of processes adds up to what the group really occupies (RSS would count the shared
libraries of every Ray worker once per worker). Its file-backed part moves whenever any
process on the machine maps or unmaps the same files (every Python and Ray process shares
the venv's libraries), so small differences are read from `Pss_Anon` (heap, stacks), which
only this process's own allocations change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pss:
    """MiB: all of it, and the anonymous part."""

    total: float
    anon: float

    def __add__(self, other: Pss) -> Pss:
        return Pss(self.total + other.total, self.anon + other.anon)

    def __sub__(self, other: Pss) -> Pss:
        return Pss(self.total - other.total, self.anon - other.anon)


def pss(pid: int) -> Pss:
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("Pss", "Pss_Anon"):
                fields[name] = int(rest.split()[0])
    if "Pss" not in fields:
        raise RuntimeError(f"no Pss line for pid {pid}")
    return Pss(fields["Pss"] / 1024, fields.get("Pss_Anon", 0) / 1024)


def total_pss(pids: Iterable[int]) -> Pss:
    result = Pss(0.0, 0.0)
    for pid in pids:
        result += pss(pid)
    return result


def settle_this_process() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc `malloc_trim`).

    Without it, this process's PSS keeps whatever earlier work freed but malloc kept, and
    swings by megabytes from one reading to the next: more than 50 executions cost.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name).malloc_trim(0)
