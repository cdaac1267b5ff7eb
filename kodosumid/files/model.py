"""What the file store holds: files, their links to executions, ids, limits.

A file's id is derived from its owner and the SHA-256 of its content: one identity
uploading the same bytes twice gets the same file, two identities get two files (over one
blob on disk), and an id says nothing about anyone else's files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

# The most a chunk of an upload or a download may carry.
CHUNK_BYTES = 256 * 1024
MIB = 1024 * 1024
GIB = 1024 * MIB

Direction = Literal["in", "out"]
INPUT: Direction = "in"
OUTPUT: Direction = "out"


def file_id_for(owner: str, sha256: str) -> str:
    """32 hex digits: the file of `owner` with this content."""
    return hashlib.sha256(f"{owner}\0{sha256}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class FileRecord:
    file_id: str
    owner: str
    name: str
    media_type: str
    size: int
    sha256: str
    create_ns: int
    # When the file is purged unless an execution uses it.
    expire_ns: int


@dataclass(frozen=True, slots=True)
class FileLink:
    """A file on one side of an execution, under the name the flow sees it by."""

    file_id: str
    execution_id: str
    direction: Direction
    name: str


@dataclass(frozen=True, slots=True)
class FilesConfig:
    """`[files]` of the node's TOML file."""

    # The largest file this node stores, whoever sends it (bytes): larger ones are
    # RESOURCE_EXHAUSTED FILE_TOO_LARGE. What one identity may hold, and its own largest
    # file, are quotas (`[quotas] file_bytes`, `max_file_bytes`: kodosumid/quotas.py).
    max_file_bytes: int = 2 * GIB
    # An uploaded file no execution uses is purged this long after its upload.
    ttl_seconds: float = 7 * 24 * 3600.0
    # How often expired files are looked for.
    purge_interval_seconds: float = 60.0
