"""Which host names the CA signs into a server certificate (issue 11, item 3).

A certificate's DNS names and IP addresses let clients that check host names (every TLS
client outside kodosumi) trust it for those names, so the CA signs only names it was told
about: loopback and `localhost` (the policy's default), patterns in the auth provider's
configuration (`[auth] allowed_dns = ["*.nodes.acme.example"]`, `allowed_ips =
["10.20.0.0/16"]`), the names an admin put into the node's enrollment token, and names an
admin approved later (`koco pki approve-names`). Wildcards and the reserved identity names
(`kodosumi.server_identity`) are never signed on request.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kodosumi.errors import FieldViolation, InvalidArgument
from kodosumi.server_identity import is_reserved
from registryd.auth.model import HostNames

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DEFAULT_DNS = ("localhost",)
DEFAULT_IPS = ("127.0.0.0/8", "::1/128")


def check_names(names: HostNames, field: str = "") -> HostNames:
    """Normalized names, or INVALID_ARGUMENT naming each bad one (wildcards, reserved names,
    malformed names or addresses)."""
    dns: list[str] = []
    ips: list[str] = []
    bad: list[FieldViolation] = []
    for name in names.dns_names:
        text = name.strip().lower().rstrip(".")
        labels = text.split(".")
        if is_reserved(text) or not text or not all(_LABEL.match(x) for x in labels):
            bad.append(
                FieldViolation(
                    f"{field}dns_names", f"{name!r} is not a DNS name the CA signs (no wildcards)"
                )
            )
        elif text not in dns:
            dns.append(text)
    for address in names.ip_addresses:
        try:
            text = str(ipaddress.ip_address(address.strip()))
        except ValueError:
            bad.append(FieldViolation(f"{field}ip_addresses", f"{address!r} is not an address"))
            continue
        if text not in ips:
            ips.append(text)
    if bad:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in bad),
            violations=bad,
            reason="HOST_NAMES_NOT_ALLOWED",
        )
    return HostNames(tuple(dns), tuple(ips))


@dataclass(frozen=True, slots=True)
class HostNamePolicy:
    """Names the CA signs for any server of the trust domain (beyond token and approvals)."""

    dns_patterns: tuple[str, ...] = DEFAULT_DNS
    ip_networks: tuple[str, ...] = DEFAULT_IPS

    def __post_init__(self) -> None:
        for network in self.ip_networks:
            ipaddress.ip_network(network, strict=False)  # fail at start-up, not at issue

    def _dns_allowed(self, name: str, extra: Iterable[str]) -> bool:
        if name in extra:
            return True
        for pattern in self.dns_patterns:
            if pattern.startswith("*."):
                if name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                    return True
            elif name == pattern:
                return True
        return False

    def _ip_allowed(self, address: str, extra: Iterable[str]) -> bool:
        if address in extra:
            return True
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.ip_networks)

    def extras(self, requested: HostNames, allowed: HostNames) -> HostNames:
        """What `requested` asks for beyond this policy and `allowed`."""
        return HostNames(
            tuple(n for n in requested.dns_names if not self._dns_allowed(n, allowed.dns_names)),
            tuple(
                a for a in requested.ip_addresses if not self._ip_allowed(a, allowed.ip_addresses)
            ),
        )

    def admit(self, requested: HostNames, allowed: HostNames) -> HostNames:
        """The names to sign at enrollment: all requested ones, or INVALID_ARGUMENT naming
        those neither the token nor the policy allows (the token is not used up)."""
        requested = check_names(requested, "csr.")
        extra = self.extras(requested, allowed)
        if extra:
            named = ", ".join((*extra.dns_names, *extra.ip_addresses))
            raise InvalidArgument(
                f"csr: the request asks for host names its token does not allow: {named} "
                "(name them in the token: `koco pki token --dns/--ip`, or approve them: "
                "`koco pki approve-names`)",
                violations=[FieldViolation("csr", f"not allowed: {named}")],
                reason="HOST_NAMES_NOT_ALLOWED",
            )
        return _union(requested, allowed)

    def renewal(self, requested: HostNames, approved: HostNames) -> HostNames:
        """The names to sign at renewal: the requested ones still allowed, plus every approved
        one (so an approval reaches the certificate, and a withdrawn one leaves it)."""
        try:
            requested = check_names(requested)
        except InvalidArgument:
            requested = HostNames()
        extra = self.extras(requested, approved)
        kept = HostNames(
            tuple(n for n in requested.dns_names if n not in extra.dns_names),
            tuple(a for a in requested.ip_addresses if a not in extra.ip_addresses),
        )
        return _union(kept, approved)


def _union(a: HostNames, b: HostNames) -> HostNames:
    return HostNames(
        tuple(dict.fromkeys((*a.dns_names, *b.dns_names))),
        tuple(dict.fromkeys((*a.ip_addresses, *b.ip_addresses))),
    )
