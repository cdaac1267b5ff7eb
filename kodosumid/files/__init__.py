"""The node's file store: files in and out of executions (issue 14, docs/files.md).

- `model.py`: a stored file (`FileRecord`), its link to an execution (`FileLink`), how a
  file id is derived, the limits (`FilesConfig`).
- `store.py`: the `FileStore` Protocol (metadata), held to one contract suite
  (`tests/files/test_store_contract.py`) by `memory_store.py` and `sqlite_store.py`.
- `blobs.py`: the bytes, content-addressed under the state directory (temp file, fsync,
  rename; 0600); `blob_writer.py` writes an upload (hashed and written on two `lane.py`
  threads beside the network, O_DIRECT), `blob_reader.py` reads one for a download (a
  block ahead).
- `access.py`: who may read or add a file.
- `service.py`: the domain (`Files`): upload, download, stat, list, delete, purge; no gRPC.
- `servicer.py`: the thin `FileService` servicer and its codec.
"""

from kodosumid.files.blobs import BlobStore
from kodosumid.files.memory_store import MemoryFileStore
from kodosumid.files.model import (
    CHUNK_BYTES,
    FileLink,
    FileRecord,
    FilesConfig,
    file_id_for,
)
from kodosumid.files.sqlite_store import SqliteFileStore
from kodosumid.files.store import FileStore

__all__ = [
    "CHUNK_BYTES",
    "BlobStore",
    "FileLink",
    "FileRecord",
    "FileStore",
    "FilesConfig",
    "MemoryFileStore",
    "SqliteFileStore",
    "file_id_for",
]
