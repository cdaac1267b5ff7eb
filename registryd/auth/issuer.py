"""Issue certificates from CSRs with the trust domain's CA, and remember what was issued.

The auth provider decides the identity; a CSR only brings the public key (and, for nodes,
the host names clients dial). Certificates are short-lived. After an identity was revoked,
its new certificates start strictly later than the revocation, so the revocation (which
covers every certificate valid from that moment or earlier) does not hit them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from cryptography import x509

from kodosumi.csr import CsrRequest, InvalidCsr, read_csr
from kodosumi.pki import CertificateAuthority, cert_pem, issue_certificate
from kodosumi.spiffe import IdentityKind, SpiffeId
from registryd.auth.errors import bad_csr
from registryd.auth.model import CertificateRecord, HostNames
from registryd.auth.store import AuthStore

# Valid from a little before now: a peer whose clock is slightly behind accepts it.
CLOCK_SKEW_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Issued:
    identity: SpiffeId
    cert: x509.Certificate
    cert_pem: bytes
    ca_pem: bytes


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


class Issuer:
    def __init__(self, ca: CertificateAuthority, store: AuthStore) -> None:
        self.ca = ca
        self.store = store
        self.ca_pem = cert_pem(ca.cert)

    def check(self, identity: SpiffeId, csr_pem: bytes) -> CsrRequest:
        """The verified request, or INVALID_ARGUMENT (checked before a token is used up)."""
        try:
            request = read_csr(csr_pem)
        except InvalidCsr as e:
            raise bad_csr(str(e)) from None
        if request.identity is not None and request.identity != identity:
            raise bad_csr(f"the request names {request.identity}, but this issues {identity}")
        return request

    async def issue(
        self,
        identity: SpiffeId,
        csr_pem: bytes,
        *,
        now: float,
        lifetime: float,
        revoked_at: float | None = None,
        names: HostNames | None = None,
    ) -> Issued:
        """A certificate for `identity` with the CSR's key. `names`: the host names to sign,
        decided by the provider's policy; None signs the CSR's own (the registry's renewal of
        its own certificate, whose names its operator configured)."""
        request = self.check(identity, csr_pem)
        if names is None:
            names = HostNames(request.dns_names, request.ip_addresses)
        # Host names matter only for servers (nodes, registries); people and flows get none.
        servers = identity.kind in (IdentityKind.NODE, IdentityKind.REGISTRY)
        start = now - CLOCK_SKEW_SECONDS
        if revoked_at is not None:
            # Certificates carry whole seconds: start after the revocation's second.
            start = max(start, math.floor(revoked_at) + 1.0)
        start = float(math.floor(start))
        end = now + lifetime
        cert = issue_certificate(
            self.ca.cert,
            self.ca.key,
            request.public_key,
            identity,
            dns_names=names.dns_names if servers else (),
            ip_addresses=names.ip_addresses if servers else (),
            validity=_utc(end) - _utc(start),
            not_before=_utc(start),
        )
        await self.store.add_certificate(
            CertificateRecord(
                serial=cert.serial_number,
                identity=str(identity),
                not_before=start,
                not_after=cert.not_valid_after_utc.timestamp(),
                issued_at=now,
            )
        )
        return Issued(identity, cert, cert_pem(cert), self.ca_pem)
