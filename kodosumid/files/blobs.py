"""The bytes of stored files: content-addressed blobs under the node's state directory.

`<root>/blobs/<first two hex digits>/<sha256>`, each 0600 in 0700 folders. An upload is
written to a temp file in `<root>/tmp/` (same file system), hashed as it arrives, fsynced
once at the end and renamed into place only when its hash checks out, then the folder is
fsynced (`blob_writer.py`): a blob that is visible is whole, and an upload cut in the
middle leaves only a temp file, which the next start removes. Two owners of the same bytes
share one blob.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

from kodosumi.sqlite import private_dir
from kodosumid.files.blob_reader import read_blob
from kodosumid.files.blob_writer import BlobWriter

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(text: str) -> bool:
    return bool(_SHA256.match(text))


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs"
        self.tmp_dir = root / "tmp"

    def open(self) -> None:
        """Create the folders and remove what uploads cut short left behind."""
        private_dir(self.root)
        private_dir(self.blob_dir)
        private_dir(self.tmp_dir)
        for leftover in self.tmp_dir.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.blob_dir / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def writer(self) -> BlobWriter:
        return BlobWriter(self.tmp_dir, self.place)

    def place(self, fd: int, temp: Path, sha256: str) -> None:
        """fsync the temp file, rename it to its blob path, fsync the folder (blocking)."""
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.path(sha256)
        folder = private_dir(final.parent)
        if final.exists():
            temp.unlink()  # the same bytes are stored already
            return
        os.replace(temp, final)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read(self, sha256: str, offset: int, chunk_bytes: int) -> AsyncIterator[memoryview]:
        """The blob from `offset` on, in chunks, read a block ahead (`blob_reader.py`)."""
        return read_blob(self.path(sha256), offset, chunk_bytes)

    def delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()
