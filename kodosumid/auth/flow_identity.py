"""Identities of the flows a node hosts: `spiffe://<domain>/flow/<node>/<flow>`.

The auth provider issues them to the node (`IssueFlowCertificate`); the keys are made here
and stay here, in `<state>/pki/flows/<flow>.key` (0600) beside `<flow>.pem`. A flow uses its
identity when it calls another flow or a peer (`credentials(flow)` gives the mTLS material);
node policies let flow identities use the flow API for their own executions, and the
registry refuses them entirely. Certificates are renewed once two thirds of their lifetime
have passed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from kodosumi.credentials import IssuedCertificate, files_in
from kodosumi.csr import build_csr
from kodosumi.errors import KodosumiError
from kodosumi.pki import (
    generate_private_key,
    key_pem,
    load_certificate,
    write_private,
    write_public,
)
from kodosumi.spiffe import InvalidSpiffeId, SpiffeId
from kodosumi.tls import TlsFiles, TlsMaterial, pki_dir

log = logging.getLogger(__name__)

IssueFlow = Callable[[str, bytes], Awaitable[IssuedCertificate]]
# How often the node checks whether a flow certificate is due.
CHECK_INTERVAL_SECONDS = 30.0
RENEW_AT_FRACTION = 2 / 3


def flows_dir(state_dir: Path) -> Path:
    """Where the flows' identities are kept (`<flow>.pem`, `<flow>.key`, `ca.pem`)."""
    return pki_dir(state_dir) / "flows"


def flow_files(state_dir: Path, flow: str) -> TlsFiles:
    return files_in(flows_dir(state_dir), flow)


class FlowIdentities:
    def __init__(
        self,
        issue: IssueFlow,
        state_dir: Path,
        trust_domain: str,
        node_id: str,
        flows: Callable[[], Iterable[str]],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.issue = issue
        self.state_dir = state_dir
        self.trust_domain = trust_domain
        self.node_id = node_id
        self.flows = flows
        self.now = now

    def credentials(self, flow: str) -> TlsMaterial | None:
        """The flow's current mTLS material, or None when it has none (yet)."""
        files = flow_files(self.state_dir, flow)
        return files.read() if files.exist() else None

    def _due(self, flow: str) -> bool:
        files = flow_files(self.state_dir, flow)
        if not files.exist():
            return True
        cert = load_certificate(files.cert)
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        return self.now() >= start + (end - start) * RENEW_AT_FRACTION

    async def refresh(self) -> list[str]:
        """Issue certificates for flows that have none or whose certificate is due."""
        renewed = []
        for flow in self.flows():
            if not self._due(flow):
                continue
            try:
                identity = SpiffeId.flow(self.trust_domain, self.node_id, flow)
            except InvalidSpiffeId:
                log.warning("flow %r gets no identity: its name is no SPIFFE path segment", flow)
                continue
            key = generate_private_key()
            issued = await self.issue(flow, build_csr(key, identity))
            files = flow_files(self.state_dir, flow)
            write_private(files.key, key_pem(key))
            write_public(files.cert, issued.cert)
            write_public(files.ca_cert, issued.ca_cert)
            renewed.append(flow)
        if renewed:
            log.info("flow identities issued: %s", ", ".join(renewed))
        return renewed

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except KodosumiError as e:
                log.warning("flow identities not renewed (%s); retrying", e)
            await asyncio.sleep(CHECK_INTERVAL_SECONDS)
