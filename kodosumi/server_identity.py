"""Whom a client expects to reach: the server's SPIFFE kind and, where known, its exact id.

gRPC Python cannot verify a server's URI SAN (no custom verifier, no client-side auth
context; grpc/grpc#32635). Its host-name check can be pointed at any name, though
(`grpc.ssl_target_name_override`), and it runs inside the handshake of every connection. So
the CA writes two reserved DNS names into each server certificate (node, registry), derived
from the certificate's SPIFFE identity: one for its kind in its trust domain and one for the
exact id. A client that expects "a registry" or "node n" checks the matching name instead of
the dialled host name; only the CA can issue these names, and it refuses CSRs asking for any
name under the reserved suffix (or a wildcard). The names are hashes, so ids of any spelling
(case, `@`, `~`) map to valid, distinct DNS labels.

This module knows no gRPC; `kodosumi.rpc.channel` applies it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509

from kodosumi.spiffe import IdentityKind, SpiffeId

RESERVED_SUFFIX = ".spiffe.kodosumi.invalid"
SERVER_KINDS = frozenset({IdentityKind.NODE, IdentityKind.REGISTRY})


def _label(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:40]}{RESERVED_SUFFIX}"


def kind_name(trust_domain: str, kind: IdentityKind) -> str:
    """The reserved DNS name every server of `kind` in `trust_domain` carries."""
    return _label("k", f"spiffe://{trust_domain}/{kind}")


def identity_name(identity: SpiffeId) -> str:
    """The reserved DNS name only the holder of `identity` carries."""
    return _label("i", str(identity))


def reserved_names(identity: SpiffeId) -> tuple[str, ...]:
    """The names the CA adds to a certificate of `identity` (none for people and flows)."""
    if identity.kind not in SERVER_KINDS:
        return ()
    return (kind_name(identity.trust_domain, identity.kind), identity_name(identity))


def is_reserved(dns_name: str) -> bool:
    return dns_name.lower().rstrip(".").endswith(RESERVED_SUFFIX) or "*" in dns_name


@dataclass(frozen=True, slots=True)
class ServerExpectation:
    """What a client requires of the server it dials: a kind, and an exact id when it knows one.

    `name` is the node id or registry id (the last segment of the SPIFFE path); the trust
    domain is the one of the client's CA.
    """

    kind: IdentityKind
    name: str | None = None

    @classmethod
    def node(cls, node_id: str | None = None) -> ServerExpectation:
        return cls(IdentityKind.NODE, node_id or None)

    @classmethod
    def registry(cls, registry_id: str | None = None) -> ServerExpectation:
        return cls(IdentityKind.REGISTRY, registry_id or None)

    def describe(self, trust_domain: str) -> str:
        if self.name is None:
            return f"any {self.kind} of spiffe://{trust_domain}"
        return str(SpiffeId(trust_domain, self.kind, (self.name,)))

    def check_name(self, trust_domain: str) -> str:
        """The DNS name the handshake must find in the server's certificate."""
        if self.name is None:
            return kind_name(trust_domain, self.kind)
        return identity_name(SpiffeId(trust_domain, self.kind, (self.name,)))

    def accepts(self, identity: SpiffeId, trust_domain: str) -> bool:
        if identity.trust_domain != trust_domain or identity.kind != self.kind:
            return False
        return self.name is None or identity.name == self.name


def trust_domain_of_ca(ca_pem: bytes) -> str:
    """The trust domain a CA certificate stands for (its `spiffe://<domain>` URI SAN)."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0].removeprefix("spiffe://").rstrip("/")
