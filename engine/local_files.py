"""A `FileBridge` over a local folder: files for flows run without a node (engine tests,
trying a flow on a laptop). Inputs are read from `<root>/<sha256>`, outputs stored there."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

from engine.files import FileRef, SavedFile


class LocalFileBridge:
    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, name: str, data: bytes, media_type: str = "") -> FileRef:
        """Put content in the folder; the reference a launch would carry for it."""
        sha = hashlib.sha256(data).hexdigest()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / sha
        if not path.exists():
            path.write_bytes(data)
            path.chmod(stat.S_IRUSR)
        return FileRef(name, sha[:32], sha, len(data), media_type)

    def fetch(self, flow: str, ref: FileRef) -> Path:
        return self.root / ref.sha256

    def save(
        self, flow: str, execution_id: str, name: str, source: bytes | Path, media_type: str
    ) -> SavedFile:
        if isinstance(source, Path):
            self.root.mkdir(parents=True, exist_ok=True)
            temp = self.root / f".{name}.incoming"
            shutil.copyfile(source, temp)
            data = temp.read_bytes()
            temp.unlink()
        else:
            data = source
        ref = self.add(name, data, media_type)
        return SavedFile(ref.file_id, name, ref.size, ref.sha256, media_type)

    def read(self, saved: SavedFile) -> bytes:
        return (self.root / saved.sha256).read_bytes()
