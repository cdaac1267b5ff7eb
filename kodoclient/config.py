"""How a client finds its node and its credentials: the connect config and its resolution.

Resolution order for the node address: explicit argument > `$KODOSUMI_NODE` > the default
node of the login profile (`kodoclient login`, `kodoclient nodes use`) > the `node.json` a
running local node writes into its state directory > `127.0.0.1:7470`.
Credentials: explicit CA/cert/key files > the identity `kodoclient login` keeps under
`<state>/identity/` > the development client files the local node created under
`<state>/pki/`. Plaintext only on an explicit request (`insecure=True`,
`$KODOSUMI_INSECURE`, or a local node that itself serves plaintext).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kodoclient.errors import ConfigError
from kodoclient.identity import identity_files, read_login
from kodoclient.resume import ReconnectPolicy
from kodosumi.paths import default_state_dir
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsFiles, TlsMaterial, dev_client_files

DEFAULT_TARGET = "127.0.0.1:7470"
DEFAULT_CALL_TIMEOUT = 10.0
NODE_ENV = "KODOSUMI_NODE"
INSECURE_ENV = "KODOSUMI_INSECURE"
NODE_FILE = "node.json"
# Never give up: a watch outlives any outage of its node (see kodoclient.resume).
DEFAULT_RECONNECT = ReconnectPolicy()

Origin = Literal["explicit", "env", "profile", "node.json", "default"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class ConnectConfig:
    """Everything an SDK client needs to reach one node.

    `tls=None` means plaintext. `origin` records where `target` came from, so that callers
    (the CLI's `run`) can tell an address the user asked for from a guessed default.
    """

    target: str = DEFAULT_TARGET
    # Kept out of the repr: it holds the private key.
    tls: TlsMaterial | None = field(default=None, repr=False)
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    reconnect: ReconnectPolicy = DEFAULT_RECONNECT
    origin: Origin = "explicit"
    # Whom the server must be (its certificate's identity): a node, and which one when known.
    expect: ServerExpectation = field(default_factory=ServerExpectation.node)

    @property
    def secure(self) -> bool:
        return self.tls is not None


@dataclass(frozen=True, slots=True)
class NodeFile:
    """The `node.json` a serving node keeps in its state directory (removed on clean exit)."""

    address: str
    node_id: str = ""
    insecure: bool = False
    pid: int = 0
    identity: str = ""


def read_node_file(state_dir: Path) -> NodeFile | None:
    """The state directory's `node.json`, or None when there is none or it is unreadable.

    A file half-written by a node that is starting reads as absent: callers poll.
    """
    try:
        data = json.loads((state_dir / NODE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("address"), str):
        return None
    return NodeFile(
        address=data["address"],
        node_id=str(data.get("node_id", "")),
        insecure=bool(data.get("insecure", False)),
        pid=int(data.get("pid") or 0),
        identity=str(data.get("identity", "")),
    )


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def live_node_file(state_dir: Path, alive: Callable[[int], bool] = pid_alive) -> NodeFile | None:
    """`node.json` unless it was left behind by a node that crashed (its pid is gone)."""
    node = read_node_file(state_dir)
    if node is None or (node.pid and not alive(node.pid)):
        return None
    return node


def parse_bool(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={text!r} is not a boolean (use 1/0, true/false, yes/no)")


def resolve_config(
    *,
    target: str | None = None,
    state_dir: Path | None = None,
    insecure: bool | None = None,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    reconnect: ReconnectPolicy = DEFAULT_RECONNECT,
    env: Mapping[str, str] | None = None,
    alive: Callable[[int], bool] = pid_alive,
) -> ConnectConfig:
    """Resolve a `ConnectConfig` from explicit arguments, the environment and the state dir.

    `insecure=None` means "not said"; only `True` forces plaintext. Raises `ConfigError`
    when credentials are needed and cannot be found (reason `NO_CREDENTIALS`, which usually
    means no local node ever ran) or the given ones are inconsistent (`BAD_CONFIG`).
    """
    environ = os.environ if env is None else env
    state = state_dir if state_dir is not None else default_state_dir()
    explicit_files = any(p is not None for p in (ca, cert, key))
    if insecure and explicit_files:
        raise ConfigError("--insecure contradicts --ca/--cert/--key; give one or the other")
    if call_timeout <= 0:
        raise ConfigError(f"the call timeout must be positive, not {call_timeout}")

    origin: Origin
    node_file_insecure: bool | None = None
    node_id = ""
    if target:
        origin = "explicit"
    elif environ.get(NODE_ENV):
        target, origin = environ[NODE_ENV], "env"
    elif (login := read_login(state)) is not None and login.node_address:
        # The default node of a login (`koco login`, `koco nodes use`) is a choice the
        # user made, so it comes before a local node that merely happens to run.
        target, origin = login.node_address, "profile"
        node_id = login.node_id  # the node chosen from the registry: exactly that one
    elif (node := live_node_file(state, alive)) is not None:
        target, origin = node.address, "node.json"
        node_file_insecure = node.insecure
        node_id = node.node_id
    else:
        target, origin = DEFAULT_TARGET, "default"

    plaintext: bool
    if insecure is not None:
        plaintext = insecure
    elif explicit_files:
        plaintext = False
    elif environ.get(INSECURE_ENV) is not None:
        plaintext = parse_bool(INSECURE_ENV, environ[INSECURE_ENV])
    else:
        # The node knows best how it serves; trust its own note only for its own address.
        plaintext = bool(node_file_insecure)

    tls = None if plaintext else _credentials(state, ca, cert, key)
    return ConnectConfig(
        target=target,
        tls=tls,
        call_timeout=call_timeout,
        reconnect=reconnect,
        origin=origin,
        expect=ServerExpectation.node(node_id),
    )


def _credentials(
    state_dir: Path, ca: Path | None, cert: Path | None, key: Path | None
) -> TlsMaterial:
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together: give both or neither")
    dev = dev_client_files(state_dir)
    # An identity enrolled with `kodoclient login` comes before the development files.
    login = identity_files(state_dir)
    if login.exist():
        dev = login
    files = TlsFiles(ca or dev.ca_cert, cert or dev.cert, key or dev.key)
    for given in (ca, cert, key):
        if given is not None and not given.is_file():
            raise ConfigError(f"no such credential file: {given}")
    if not files.exist():
        raise ConfigError(
            f"no client credentials under {dev.ca_cert.parent}: start a local node (kodosumid "
            "creates development credentials there), pass --ca/--cert/--key, or --insecure "
            "for a plaintext node",
            reason="NO_CREDENTIALS",
        )
    try:
        return files.read()
    except OSError as e:
        raise ConfigError(f"cannot read credentials: {e}") from e
