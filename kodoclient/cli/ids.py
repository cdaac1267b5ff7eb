"""Short execution ids: any unique prefix of at least 6 characters stands for the whole id
wherever a command takes one (ids are 32 hex characters; tables show 12).

Resolved on the client through `ListExecutions`, so a prefix only ever matches executions
the caller may see: another user's runs are neither matched nor listed as candidates.
"""

from __future__ import annotations

import grpc

from kodoclient._async import AsyncClient
from kodoclient.errors import KodoclientError
from kodoclient.events import status_name

MIN_PREFIX = 6
FULL_LENGTH = 32
# Candidates named in an "ambiguous" error; more are counted, not listed.
_SHOWN = 10


async def resolve_execution_id(client: AsyncClient, given: str) -> str:
    """The full id `given` stands for: the one visible execution whose id starts with it
    (at least 6 characters), else `given` as it is — the node then answers for it (NOT_FOUND).
    An ambiguous prefix is INVALID_ARGUMENT naming the candidates."""
    text = given.strip().lower()
    if len(text) >= FULL_LENGTH or len(text) < MIN_PREFIX:
        return given
    matches = [
        execution
        async for execution in client.list_executions(page_size=500)
        if execution.execution_id.lower().startswith(text)
    ]
    exact = [e for e in matches if e.execution_id.lower() == text]
    if exact:
        return exact[0].execution_id
    if len(matches) == 1:
        return matches[0].execution_id
    if not matches:
        return given
    listed = "; ".join(
        f"{e.execution_id} ({e.flow}, {status_name(e.status)})" for e in matches[:_SHOWN]
    )
    more = f"; and {len(matches) - _SHOWN} more" if len(matches) > _SHOWN else ""
    raise KodoclientError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"execution id prefix {given!r} is ambiguous: {listed}{more}",
        reason="AMBIGUOUS_ID_PREFIX",
    )
