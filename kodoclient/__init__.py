"""kodoclient: the Python SDK (asyncio and blocking) and the `kodoclient`/`koco` CLI.

The public surface is what `__all__` lists; modules starting with `_` are private.

    async with AsyncClient() as client:          # node and credentials resolved as the CLI does
        execution = await client.launch("hello", {"name": "Ada"})
        async for event in client.watch(execution.execution_id):
            ...
"""

import os

# gRPC core writes its own log lines (a failed TLS handshake, at INFO) straight to stderr,
# where they garble the CLI's messages; the SDK says what went wrong itself. Read once, when
# grpc is first imported, so it is set here; a user's own GRPC_VERBOSITY wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from kodoclient._async import AsyncClient
from kodoclient._sync import Client
from kodoclient.config import ConnectConfig, NodeFile, resolve_config
from kodoclient.errors import ConfigError, KodoclientError
from kodoclient.events import (
    TERMINAL_STATUSES,
    is_terminal,
    open_input_requests,
    parse_status,
    status_name,
)
from kodoclient.follow_state import FollowState, fold
from kodoclient.registry import RegistryClient, RegistrySnapshot
from kodoclient.resume import ReconnectPolicy
from kodosumi.errors import FieldViolation

__all__ = [
    "TERMINAL_STATUSES",
    "AsyncClient",
    "Client",
    "ConfigError",
    "ConnectConfig",
    "FieldViolation",
    "FollowState",
    "KodoclientError",
    "NodeFile",
    "ReconnectPolicy",
    "RegistryClient",
    "RegistrySnapshot",
    "fold",
    "is_terminal",
    "open_input_requests",
    "parse_status",
    "resolve_config",
    "status_name",
]
