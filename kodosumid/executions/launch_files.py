"""The files port of executions: what a launch's input files need from the file store.

The domain of executions knows files only through this Protocol (`kodosumid/files/service.py`
implements it): a launch resolves the files it names (each must be readable by the caller)
before anything is stored, links them to the new execution, and every dispatch reads them
back, so retries and a restarted node hand the executor the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kodosumi.authz import Principal
from kodosumi.errors import InvalidArgument


class InputFileLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def file_id(self) -> str: ...

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


class LaunchFiles(Protocol):
    async def resolve_inputs(
        self, principal: Principal, files: dict[str, str], forwarded_for: str = ""
    ) -> Sequence[InputFileLike]:
        """`forwarded_for`: on a launch a peer forwarded, the identity it is for."""
        ...

    async def link_inputs(self, execution_id: str, files: Sequence[InputFileLike]) -> None: ...

    async def inputs_of(self, execution_id: str) -> list[dict[str, Any]]: ...

    async def grant_node(self, file_ids: Sequence[str], node_id: str) -> None:
        """Let the peer node `node_id` read these files (a launch forwarded there)."""
        ...


async def resolve(
    port: LaunchFiles | None,
    principal: Principal,
    files: dict[str, str] | None,
    forwarded_for: str = "",
) -> Sequence[InputFileLike]:
    if not files:
        return ()
    if port is None:
        raise InvalidArgument.field("files", "this node keeps no files")
    return await port.resolve_inputs(principal, files, forwarded_for)
