"""The certificate half of the auth provider: enrollment tokens, enrollment, renewal, flow
identities, and the host names a server's certificates may carry (`host_names.py`).

`AuthProvider` (provider.py) holds the state these methods use; they live here so that each
module stays readable.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import TYPE_CHECKING

from kodosumi.authz import Principal
from kodosumi.enrollment import EnrollmentToken, fingerprint
from kodosumi.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from kodosumi.spiffe import IdentityKind, InvalidSpiffeId, SpiffeId
from registryd.auth.errors import EnrollmentTokenInvalid, UserNotFound
from registryd.auth.host_names import HostNamePolicy, check_names
from registryd.auth.issuer import Issued, Issuer
from registryd.auth.model import HostNames, Revocations, TokenRecord, User
from registryd.auth.store import AuthStore
from registryd.clock import Clock

if TYPE_CHECKING:
    from registryd.auth.provider import AuthSettings

log = logging.getLogger(__name__)


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_server(identity: SpiffeId) -> bool:
    return identity.kind in (IdentityKind.NODE, IdentityKind.REGISTRY)


class CertificateDesk:
    store: AuthStore
    issuer: Issuer
    clock: Clock
    settings: AuthSettings
    trust_domain: str
    _users: dict[str, User]
    _revoked: Revocations

    @property
    def host_names(self) -> HostNamePolicy:
        return self.settings.host_names

    def _revoked_at(self, identity: SpiffeId) -> float | None:
        for r in self._revoked.identities:
            if r.identity == str(identity):
                return r.revoked_at
        return None

    async def _issue(self, identity: SpiffeId, csr: bytes, names: HostNames) -> Issued:
        return await self.issuer.issue(
            identity,
            csr,
            now=self.clock.now(),
            lifetime=self.settings.certificate_lifetime,
            revoked_at=self._revoked_at(identity),
            names=names,
        )

    async def enroll(self, secret: str, csr: bytes) -> Issued:
        """A first certificate for the identity a one-time token was made for.

        The request is checked (CSR, host names) before the token is used up: a bad request
        is INVALID_ARGUMENT and the token stays good for a corrected one.
        """
        if not secret:
            raise EnrollmentTokenInvalid()
        token = await self.store.peek_token(token_hash(secret), self.clock.now())
        if token is None:
            raise EnrollmentTokenInvalid()
        identity = SpiffeId.parse(token.identity)
        if identity.kind is IdentityKind.USER and identity.name not in self._users:
            # The user was deleted after the token was made.
            raise EnrollmentTokenInvalid()
        request = self.issuer.check(identity, csr)
        asked = HostNames(request.dns_names, request.ip_addresses)
        names = self.host_names.admit(asked, token.names) if is_server(identity) else HostNames()
        if await self.store.use_token(token.secret_hash, self.clock.now()) is None:
            raise EnrollmentTokenInvalid()  # used by a concurrent enrollment meanwhile
        if token.names:
            # Renewals keep what the admin allowed here.
            await self.store.approve_names(
                str(identity), token.names, self.clock.now(), token.created_by
            )
        issued = await self._issue(identity, csr, names)
        log.info("enrolled %s (serial %x)", identity, issued.cert.serial_number)
        return issued

    async def renew(self, caller: Principal, csr: bytes) -> Issued:
        """A new certificate of the caller's own identity (its current one proves it), with
        the host names still allowed and every approved one."""
        if caller.identity is None:
            raise PermissionDenied("an anonymous caller has no certificate to renew")
        names = HostNames()
        if is_server(caller.identity):
            request = self.issuer.check(caller.identity, csr)
            approved = await self.store.approved_names(str(caller.identity))
            asked = HostNames(request.dns_names, request.ip_addresses)
            names = self.host_names.renewal(asked, approved)
        return await self._issue(caller.identity, csr, names)

    async def approve_names(self, admin: Principal, node_id: str, names: HostNames) -> SpiffeId:
        """Replace the host names node `node_id`'s certificates may carry; its next renewal
        carries exactly these (beyond loopback and the policy)."""
        try:
            identity = SpiffeId.node(self.trust_domain, node_id)
        except InvalidSpiffeId as e:
            raise InvalidArgument.field("node_id", str(e)) from None
        checked = check_names(names)
        await self.store.approve_names(str(identity), checked, self.clock.now(), admin.id)
        log.info("approved host names of %s: %s", identity, checked)
        return identity

    async def issue_flow(self, caller: Principal, flow: str, csr: bytes) -> Issued:
        """`spiffe://<domain>/flow/<caller's node id>/<flow>`: a node gets identities only for
        flows under its own node id."""
        identity = caller.identity
        if identity is None or identity.kind is not IdentityKind.NODE:
            raise PermissionDenied("only nodes get certificates for the flows they host")
        try:
            flow_id = SpiffeId.flow(identity.trust_domain, identity.name, flow)
        except InvalidSpiffeId as e:
            raise InvalidArgument.field("flow", str(e)) from None
        return await self._issue(flow_id, csr, HostNames())

    async def create_token(
        self,
        creator: Principal,
        identity: SpiffeId,
        ttl: float | None = None,
        names: HostNames | None = None,
    ) -> tuple[str, float]:
        """A one-time enrollment token for `identity`; returns it and when it expires.
        `names`: host names a node's certificate may carry (people's carry none)."""
        if identity.kind not in (IdentityKind.USER, IdentityKind.NODE, IdentityKind.GATEWAY):
            raise InvalidArgument.field("kind", "tokens enroll users, nodes and gateways")
        if names and not is_server(identity):
            raise InvalidArgument.field("dns_names", "certificates of people carry no host names")
        names = check_names(names or HostNames())
        if identity.kind is IdentityKind.USER and identity.name not in self._users:
            raise UserNotFound(identity.name)
        self._check_enrollment()
        lifetime = ttl if ttl and ttl > 0 else self.settings.token_lifetime
        now = self.clock.now()
        secret = secrets.token_urlsafe(32)
        await self.store.add_token(
            TokenRecord(
                token_hash(secret), str(identity), now, now + lifetime, creator.id, None, names
            )
        )
        token = EnrollmentToken(
            enroll_address=self.settings.enroll_address,
            registry_address=self.settings.registry_address,
            identity=str(identity),
            ca_fingerprint=fingerprint(self.issuer.ca.cert),
            secret=secret,
            registry_id=self.settings.registry_id,
            dns_names=names.dns_names,
            ip_addresses=names.ip_addresses,
            registry_addresses=self.settings.registry_addresses,
        )
        return token.encode(), now + lifetime

    def _check_enrollment(self) -> None:
        if not self.settings.enroll_address:
            raise FailedPrecondition(
                "the auth provider has no enrollment port (see the registry's log)",
                reason="ENROLLMENT_UNAVAILABLE",
            )
