"""Responses of the form `repeated Event events = 1`, framed from serialized events.

A message's repeated field is the concatenation of its elements, each as tag byte `0x0a`,
a varint length and the element's bytes; two such responses concatenated are one response
with the events of both. Chunks are cut at `max_bytes` (an event larger than that is a
chunk of its own, so one large event still goes through).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TAG = b"\x0a"
# Keeps each response far below the 4 MiB clients accept, and bounds what one stream holds in
# flight (grpc copies the message it sends): 64 KiB x 1,000 streams is 64 MiB at worst.
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Chunk:
    """One response's bytes: the events `first_seq`..`last_seq`, framed."""

    first_seq: int
    last_seq: int
    data: bytes

    def after(self, cursor: int) -> bytes:
        """The frames of the events after `cursor` (all of them when it is before the chunk)."""
        if cursor < self.first_seq:
            return self.data
        return skip(self.data, cursor + 1 - self.first_seq)


def varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def chunks(first_seq: int, events: Sequence[bytes], max_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """Frame consecutive events (`first_seq`, …) into chunks of at most `max_bytes`."""
    out: list[Chunk] = []
    parts: list[bytes] = []
    size, start = 0, first_seq
    for i, data in enumerate(events):
        head = TAG + varint(len(data))
        if parts and size + len(head) + len(data) > max_bytes:
            out.append(Chunk(start, first_seq + i - 1, b"".join(parts)))
            parts, size, start = [], 0, first_seq + i
        parts += (head, data)
        size += len(head) + len(data)
    if parts:
        out.append(Chunk(start, first_seq + len(events) - 1, b"".join(parts)))
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def skip(data: bytes, count: int) -> bytes:
    """`data` without its first `count` framed events."""
    pos = 0
    for _ in range(count):
        length, pos = _read_varint(data, pos + 1)
        pos += length
    return data[pos:]


def split(data: bytes) -> list[bytes]:
    """The serialized events of a framed response (for callers that want them one by one)."""
    events, pos = [], 0
    while pos < len(data):
        length, pos = _read_varint(data, pos + 1)
        events.append(data[pos : pos + length])
        pos += length
    return events


def coalesce(new: list[Chunk], cursor: int, max_bytes: int) -> list[tuple[int, bytes]]:
    """(last_seq, response) for the chunks after `cursor`: shared chunk bytes where a chunk
    is sent whole and alone, small neighbours joined into one response."""
    out: list[tuple[int, bytes]] = []
    parts: list[bytes] = []
    size = 0
    last = cursor
    for chunk in new:
        if chunk.last_seq <= cursor:
            continue
        data = chunk.after(cursor)
        if parts and size + len(data) > max_bytes:
            out.append((last, parts[0] if len(parts) == 1 else b"".join(parts)))
            parts, size = [], 0
        parts.append(data)
        size += len(data)
        last = cursor = chunk.last_seq
    if parts:
        out.append((last, parts[0] if len(parts) == 1 else b"".join(parts)))
    return out
