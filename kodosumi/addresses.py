"""What a daemon tells others to dial, and the names its certificate must carry, both derived
from where it listens.

- A daemon listening on one address (`10.0.0.5:7470`, `127.0.0.1:7470`) advertises that.
- A daemon listening on a wildcard (`0.0.0.0:7470`, `[::]:7470`) advertises the host's own
  addresses (every interface but loopback and link-local), with the bound port.
- `--advertise HOST[:PORT]` (repeatable; also an environment variable and the TOML) replaces
  both: behind NAT, by DNS name, or on a host with several addresses of which peers reach one.
  A missing port is the bound one.

A wildcard listen with nothing to advertise (a host with loopback only, or an advertised
wildcard) is a start-up error that names the fix: peers on other hosts would otherwise be
told to dial 127.0.0.1, their own machine.

The certificate of a daemon names loopback, `localhost`, the host name and every host it
advertises, so that clients that check host names accept it wherever they dial it from.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence

import ifaddr

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")


class AdvertiseError(ValueError):
    """Nothing usable to advertise; the message says what to set."""


def split_host_port(address: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `host` or `[v6]` as (host without brackets, port or None)."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port else None
    if address.count(":") > 1:  # a bare IPv6 address
        return address, None
    host, sep, port = address.partition(":")
    if not sep:
        return host, None
    if not port.isdigit():
        raise AdvertiseError(f"{address!r}: the port must be a number")
    return host, int(port)


_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_host(host: str, entry: str) -> None:
    """`host` must be an IP address or a DNS name (what `entry` said, for the message)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if not host or len(host) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
        raise AdvertiseError(f"{entry!r}: {host!r} is neither an IP address nor a DNS name")


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in WILDCARD_HOSTS


def host_addresses() -> list[str]:
    """This host's addresses others can reach: IPv4 first, then global IPv6; no loopback and
    no link-local addresses (they need an interface name to be dialled)."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if ip.is_IPv4 else ip.ip[0]
            address = ipaddress.ip_address(str(text).split("%")[0])
            if address.is_loopback or address.is_link_local or address.is_unspecified:
                continue
            found.append(address)
    ordered = sorted(set(found), key=lambda a: (a.version, a.packed))
    return [str(a) for a in ordered]


def advertised_endpoints(
    listen: str,
    port: int,
    advertise: Sequence[str],
    *,
    fix: str,
    addresses: Callable[[], list[str]] = host_addresses,
) -> tuple[str, ...]:
    """The `host:port`s a daemon bound to `port` on `listen` tells others to dial.

    `fix` completes the error message with this daemon's spelling of the remedy, e.g.
    "pass --advertise HOST:PORT (or KODOSUMI_ADVERTISE, or [node] advertise)".
    """
    if advertise:
        endpoints = []
        for entry in advertise:
            host, given = split_host_port(entry)
            if is_wildcard(host):
                raise AdvertiseError(
                    f"cannot advertise {entry!r}: it is not an address others can dial; {fix}"
                )
            check_host(host, entry)
            if given is not None and not 0 < given < 65536:
                raise AdvertiseError(f"{entry!r}: the port must be from 1 to 65535")
            endpoints.append(join_host_port(host, given or port))
        return tuple(dict.fromkeys(endpoints))
    host, _ = split_host_port(listen)
    if not is_wildcard(host):
        return (join_host_port(host, port),)
    found = addresses()
    if not found:
        raise AdvertiseError(
            f"listening on {listen} but this host has no address other than loopback to "
            f"advertise, so others could not dial it; {fix}"
        )
    return tuple(join_host_port(a, port) for a in found)


def check_advertisable(listen: str, advertise: Sequence[str], *, fix: str) -> None:
    """Fail at start-up, before anything is bound, when nothing usable can be advertised."""
    advertised_endpoints(listen, split_host_port(listen)[1] or 1, advertise, fix=fix)


def certificate_hosts(
    listen: str,
    advertise: Sequence[str],
    extra: Sequence[str] = (),
    *,
    addresses: Callable[[], list[str]] = host_addresses,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(DNS names, IP addresses) the daemon's certificate must carry: loopback, `localhost`,
    the host name, the advertised hosts (for a wildcard listen without `advertise`: the
    host's addresses) and `extra` (`--tls-host`)."""
    hosts: list[str] = [*LOOPBACK_NAMES, socket.gethostname(), *LOOPBACK_IPS]
    listen_host, _ = split_host_port(listen)
    if advertise:
        hosts += [split_host_port(a)[0] for a in advertise]
    elif is_wildcard(listen_host):
        hosts += addresses()
    if not is_wildcard(listen_host):
        hosts.append(listen_host)
    hosts += extra
    dns: list[str] = []
    ips: list[str] = []
    for host in dict.fromkeys(h.strip("[]") for h in hosts if h and not is_wildcard(h)):
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.append(host)
    return tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips))
