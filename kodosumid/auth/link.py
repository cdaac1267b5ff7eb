"""The node's link to its auth provider, in one place: the grants resolver and the
revocation list its guard uses, the auth state follower that keeps both current, the renewal
of the node's own certificate and the identities of its flows.

`NodeApp` makes one when the node has an auth provider (`NodeCredentials.auth_address`),
builds its `Authenticator` from `grants` and `revocations`, `start()`s it once serving and
`close()`s it on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kodosumi.authz import StaticRoleResolver
from kodosumi.credentials import CertificateRenewer
from kodosumi.ledger_client import LedgerClient, LedgerTarget
from kodosumi.revocations import RevocationList
from kodosumid.auth.client import AuthClient
from kodosumid.auth.flow_identity import FlowIdentities
from kodosumid.auth.identity import NodeCredentials
from kodosumid.auth.roles import ProviderGrants
from kodosumid.auth.sync import AuthStateFollower
from kodosumid.config import AuthClientConfig
from kodosumid.network.ledger_link import LedgerLink

log = logging.getLogger(__name__)


class NodeAuth:
    def __init__(
        self,
        credentials: NodeCredentials,
        settings: AuthClientConfig,
        local: StaticRoleResolver,
        state_dir: Path,
    ) -> None:
        assert credentials.tls is not None and credentials.identity is not None
        self.credentials = credentials
        self.settings = settings
        self.client = AuthClient(
            credentials.auth_address, credentials.tls, registry_id=credentials.registry_id
        )
        self.grants = ProviderGrants(
            self.client.grants,
            ttl=settings.grants_cache_seconds,
            max_stale=settings.max_stale_seconds,
            local=local,
        )
        self.revocations = RevocationList()
        self.follower = AuthStateFollower(self.client, self.revocations, self.grants.invalidate)
        self.renewer = (
            CertificateRenewer(credentials.rotating, self.client.renew)
            if credentials.rotating is not None
            else None
        )
        self.flows: FlowIdentities | None = None
        # The ledger beside the auth provider: quoted runs reserve, receipts settle there.
        self.ledger: LedgerLink | None = None
        self._ledger_client: LedgerClient | None = None
        if settings.ledger:
            self._ledger_client = LedgerClient(
                LedgerTarget(credentials.auth_address, credentials.tls, credentials.registry_id)
            )
            self.ledger = LedgerLink(self._ledger_client)
        self._state_dir = state_dir
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, flow_names: Callable[[], Iterable[str]]) -> None:
        """Follow the auth state, renew the node's certificate, keep flow identities."""
        identity = self.credentials.identity
        assert identity is not None
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.follower.run(), name="auth-state"))
        if self.renewer is not None:
            self._tasks.append(loop.create_task(self.renewer.run(), name="certificate-renewal"))
        if self.settings.flow_identities:
            self.flows = FlowIdentities(
                self.client.issue_flow,
                self._state_dir,
                identity.trust_domain,
                identity.name,
                flow_names,
            )
            self._tasks.append(loop.create_task(self.flows.run(), name="flow-identities"))
        if self.ledger is not None:
            self._tasks.append(loop.create_task(self.ledger.run(), name="ledger-settlements"))
        log.info("auth provider %s: following roles and revocations", self.client.address)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.ledger is not None and self.ledger.pending:
            # The holds of these runs lapse unpaid (docs/operations.md).
            log.warning("%d receipts not settled before the stop", len(self.ledger.pending))
        if self._ledger_client is not None:
            await self._ledger_client.close()
        await self.client.close()
