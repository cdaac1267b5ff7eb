"""What the engine needs to run one execution (plain data; crosses the Ray hop as a dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ExecutionSpec:
    execution_id: str
    flow: str
    entrypoint: str
    inputs: dict[str, Any]
    # Sequence number of the first event the engine emits; the node wrote the ones before.
    first_seq: int = 1
    attempt: int = 1
    # A failure of an attempt before the last one ends it RETRYING instead of FAILED.
    max_attempts: int = 1
    # Zero means no timeout.
    timeout_seconds: float = 0.0
    # How long a cancelled flow may take to stop before it is abandoned or killed.
    cancel_grace_seconds: float = 5.0
    owner: str = ""
    node_id: str = ""
    # W3C `traceparent` of the launch, so engine spans join the client's trace.
    traceparent: str = ""
    # Folders put on `sys.path` before the entrypoint is imported.
    python_path: tuple[str, ...] = field(default_factory=tuple)
    # Input files (`ctx.files`): dicts of `engine.files.FileRef`.
    files: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    # The flow's isolation: "process" when its executor hosts it alone (its usage then counts
    # the CPU of the whole process, threads the flow starts included).
    isolation: str = "shared"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionSpec:
        values = dict(data)
        values["python_path"] = tuple(values.get("python_path", ()))
        values["files"] = tuple(values.get("files", ()))
        return cls(**values)
