"""An asyncio client of the auth provider (`AuthService` beside the registry), for admins and
for `kodoclient whoami`/`verify`, and how the CLI finds the registry and its credentials.

The registry address is the first of: an explicit address, `$KODOSUMI_REGISTRY`, the
registry the logged-in identity enrolled with, the `registry.json` of a local registryd
(`<state>/registry/`), `127.0.0.1:7460`. Credentials: explicit files, else the logged-in
identity, else the development client files of a local registry, else those of a local node.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import duration_pb2

from kodoclient.errors import ConfigError, KodoclientError, explain_transport
from kodoclient.identity import read_login
from kodosumi.rpc.channel import open_channel
from kodosumi.server_identity import ServerExpectation
from kodosumi.tls import TlsFiles, TlsMaterial, dev_client_files
from kodosumi.v1 import auth_pb2 as pb
from kodosumi.v1 import auth_pb2_grpc

DEFAULT_REGISTRY = "127.0.0.1:7460"
REGISTRY_ENV = "KODOSUMI_REGISTRY"
ROLE_NAMES = {"user": pb.ROLE_USER, "operator": pb.ROLE_OPERATOR, "admin": pb.ROLE_ADMIN}
BADGE_KINDS = {
    "certified-flow": pb.BADGE_KIND_CERTIFIED_FLOW,
    "service-level": pb.BADGE_KIND_SERVICE_LEVEL,
}

_Resp = TypeVar("_Resp")


@dataclass(frozen=True, slots=True)
class RegistryTarget:
    address: str
    tls: TlsMaterial | None
    call_timeout: float = 10.0
    # The registry's id when known (login profile, local registry.json): exactly that one.
    registry_id: str = ""

    @property
    def expect(self) -> ServerExpectation:
        return ServerExpectation.registry(self.registry_id)


def _local_registry(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "registry" / "registry.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve_registry(
    *,
    address: str | None,
    state_dir: Path,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    insecure: bool = False,
    call_timeout: float = 10.0,
    env: Mapping[str, str] | None = None,
) -> RegistryTarget:
    """Where the auth provider is and how to reach it (see the module docstring)."""
    environ = os.environ if env is None else env
    login = read_login(state_dir)
    local = _local_registry(state_dir)
    target = (
        address
        or environ.get(REGISTRY_ENV)
        or (login.registry_address if login else "")
        or str(local.get("address", ""))
        or DEFAULT_REGISTRY
    )
    # A local registryd that serves plaintext says so; trust that only for its own address,
    # and only when no credential files were given.
    local_plaintext = local.get("insecure") is True and target == local.get("address")
    if insecure or (local_plaintext and ca is None and cert is None and key is None):
        return RegistryTarget(target, None, call_timeout)
    registry_id = ""
    if login is not None and login.registry_id and target == login.registry_address:
        registry_id = login.registry_id
    elif local.get("registry_id") and target == local.get("address"):
        registry_id = str(local["registry_id"])
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together: give both or neither")
    candidates: list[TlsFiles] = []
    if cert is not None and key is not None:
        candidates.append(TlsFiles(ca or cert, cert, key))
    if login is not None:
        candidates.append(login.files)
    if local.get("client_cert"):
        candidates.append(
            TlsFiles(Path(local["ca_cert"]), Path(local["client_cert"]), Path(local["client_key"]))
        )
    candidates.append(dev_client_files(state_dir))
    for found in candidates:
        files = TlsFiles(ca, found.cert, found.key) if ca is not None else found
        if files.exist():
            return RegistryTarget(target, files.read(), call_timeout, registry_id)
    raise ConfigError(
        "no credentials for the registry: `kodoclient login TOKEN`, or --ca/--cert/--key",
        reason="NO_CREDENTIALS",
    )


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    if not seconds:
        return None
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class AuthClient:
    """The AuthService calls the CLI makes; failures are `KodoclientError`s."""

    def __init__(self, target: RegistryTarget) -> None:
        self.target = target
        self._channel = open_channel(target.address, target.tls, expect=target.expect)
        self._stub: Any = auth_pb2_grpc.AuthServiceStub(self._channel)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._channel.close()

    async def call(self, method: str, request: Any) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self._stub, method)
        try:
            return await rpc(request, timeout=self.target.call_timeout)
        except grpc.aio.AioRpcError as e:
            error = KodoclientError.from_rpc(e, method)
            raise explain_transport(
                error, self.target.address, self.target.tls is not None
            ) from None

    async def whoami(self) -> pb.WhoAmIResponse:
        response: pb.WhoAmIResponse = await self.call("WhoAmI", pb.WhoAmIRequest())
        return response
