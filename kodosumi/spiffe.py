"""SPIFFE-style identities: `spiffe://<trust-domain>/<kind>/<name>[/<name>...]`.

Every party holds a certificate with exactly one such URI SAN. Kinds:
`registry/<id>`, `node/<id>`, `user/<name>`, `flow/<node>/<flow>`, `gateway/<id>` (a
marketplace gateway, `kodogate`: a client of nodes with an identity of its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_TRUST_DOMAIN = re.compile(r"^[a-z0-9._-]{1,255}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~@+-]{1,128}$")


class IdentityKind(StrEnum):
    REGISTRY = "registry"
    NODE = "node"
    USER = "user"
    FLOW = "flow"
    GATEWAY = "gateway"


_SEGMENTS_PER_KIND = {
    IdentityKind.REGISTRY: 1,
    IdentityKind.NODE: 1,
    IdentityKind.USER: 1,
    IdentityKind.FLOW: 2,
    IdentityKind.GATEWAY: 1,
}


class InvalidSpiffeId(ValueError):
    """The text is not a SPIFFE ID of one of kodosumi's identity kinds."""


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    kind: IdentityKind
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise InvalidSpiffeId(f"invalid trust domain {self.trust_domain!r}")
        if len(self.names) != _SEGMENTS_PER_KIND[self.kind]:
            raise InvalidSpiffeId(
                f"a {self.kind} identity has {_SEGMENTS_PER_KIND[self.kind]} name segment(s)"
            )
        for name in self.names:
            if not _SEGMENT.match(name):
                raise InvalidSpiffeId(f"invalid name segment {name!r}")

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        if not uri.startswith("spiffe://"):
            raise InvalidSpiffeId(f"not a spiffe URI: {uri!r}")
        domain, _, path = uri[len("spiffe://") :].partition("/")
        parts = path.split("/") if path else []
        if not parts:
            raise InvalidSpiffeId(f"spiffe URI without a path: {uri!r}")
        try:
            kind = IdentityKind(parts[0])
        except ValueError:
            raise InvalidSpiffeId(f"unknown identity kind {parts[0]!r} in {uri!r}") from None
        return cls(domain, kind, tuple(parts[1:]))

    @classmethod
    def node(cls, trust_domain: str, node_id: str) -> SpiffeId:
        return cls(trust_domain, IdentityKind.NODE, (node_id,))

    @classmethod
    def user(cls, trust_domain: str, name: str) -> SpiffeId:
        return cls(trust_domain, IdentityKind.USER, (name,))

    @classmethod
    def registry(cls, trust_domain: str, registry_id: str) -> SpiffeId:
        return cls(trust_domain, IdentityKind.REGISTRY, (registry_id,))

    @classmethod
    def flow(cls, trust_domain: str, node_id: str, flow: str) -> SpiffeId:
        return cls(trust_domain, IdentityKind.FLOW, (node_id, flow))

    @classmethod
    def gateway(cls, trust_domain: str, gateway_id: str) -> SpiffeId:
        return cls(trust_domain, IdentityKind.GATEWAY, (gateway_id,))

    @property
    def name(self) -> str:
        """The last path segment: the node id, user name, registry id or flow name."""
        return self.names[-1]

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}/{self.kind}/{'/'.join(self.names)}"
