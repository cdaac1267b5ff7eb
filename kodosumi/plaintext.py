"""When a daemon may serve plaintext: on loopback, or with a flag that says what it does.

`--insecure` turns identities off. On the registry that makes every caller an admin, on a node
every caller an admin of its executions; from another host that is anybody on the network.
So a plaintext listen address that is not loopback is refused unless the operator also gives
`--insecure-allow-remote` (named so that it reads as what it is in a shell history).
"""

from __future__ import annotations

import ipaddress


def is_loopback_listen(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: reachable from elsewhere


def plaintext_refusal(listen: str, *, insecure: bool, allow_remote: bool) -> str | None:
    """Why this plaintext listen address is refused (None: it is not)."""
    if not insecure or allow_remote or is_loopback_listen(listen):
        return None
    return (
        f"--insecure on {listen} would serve every host that reaches it without any identity "
        "(every caller an admin); listen on 127.0.0.1, drop --insecure, or add "
        "--insecure-allow-remote if that is really meant"
    )
