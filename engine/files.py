"""Files of an execution inside its executor: `ctx.files` (inputs) and `ctx.save_file` (outputs).

The engine does not know how bytes move (it never imports grpc): the executor hands the
host a `FileBridge` that fetches an input's content into a local cache (from the node, on
whatever host of the Ray cluster the executor runs) and stores an output on the node.
Inputs appear as read-only files under the names the launch gave them, in a folder of the
execution's own that goes when the execution ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class FileRef:
    """An input file as the launch names it (crosses the Ray hop as a dict)."""

    name: str
    file_id: str
    sha256: str
    size: int
    media_type: str = ""
    # The name it was uploaded under (`name` is the one the launch gave it).
    file_name: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileRef:
        return cls(
            str(data["name"]),
            str(data["file_id"]),
            str(data["sha256"]),
            int(data["size"]),
            str(data.get("media_type", "")),
            str(data.get("file_name", "")),
        )


@dataclass(frozen=True, slots=True)
class SavedFile:
    """An output stored on the node (`ctx.save_file`)."""

    file_id: str
    name: str
    size: int
    sha256: str
    media_type: str
    node_id: str = ""


class FileBridge(Protocol):
    """Moves the bytes of an execution's files between its executor and its node."""

    def fetch(self, flow: str, ref: FileRef) -> Path:
        """A local, read-only file with the content of `ref` (hash checked)."""
        ...

    def save(
        self, flow: str, execution_id: str, name: str, source: bytes | Path, media_type: str
    ) -> SavedFile:
        """Store `source` on the node as an output of the execution."""
        ...


class FilesUnavailable(RuntimeError):
    """This engine was started without a node to fetch or store files through."""


class InputFiles(Mapping[str, Path]):
    """`ctx.files`: input name -> a path the flow may open and read (fetched on first use)."""

    def __init__(
        self, refs: list[FileRef], flow: str, execution_id: str, bridge: FileBridge | None
    ) -> None:
        self._refs = {ref.name: ref for ref in refs}
        self._flow = flow
        self._execution_id = execution_id
        self._bridge = bridge
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._folder: Path | None = None

    def __getitem__(self, name: str) -> Path:
        ref = self._refs[name]
        with self._lock:
            known = self._paths.get(name)
            if known is not None:
                return known
            if self._bridge is None:
                raise FilesUnavailable("this execution has no node to fetch its files from")
            cached = self._bridge.fetch(self._flow, ref)
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix=f"kodosumi-{self._execution_id}-"))
            path = self._folder / name
            try:
                os.link(cached, path)  # same bytes, no copy; read-only like the cached file
            except OSError:
                shutil.copyfile(cached, path)
                path.chmod(stat.S_IRUSR)
            self._paths[name] = path
            return path

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def info(self, name: str) -> FileRef:
        """What the launch said of the file (id, size, SHA-256, media type)."""
        return self._refs[name]

    def close(self) -> None:
        """Remove the execution's folder (the cache keeps the bytes for later runs)."""
        with self._lock:
            folder, self._folder = self._folder, None
            self._paths.clear()
        if folder is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
