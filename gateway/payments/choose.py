"""Which payment backend serves a service: `free` for services that ask nothing, else the
configured one (`[payments] backend`), built once and shared by the services using it."""

from __future__ import annotations

from collections.abc import MutableMapping

from gateway.config import ConfigError, GatewayConfig, ServiceConfig
from gateway.payments.backend import PaymentBackend
from gateway.payments.free import FreeBackend
from gateway.payments.masumi import MasumiBackend

__all__ = ["backend_for", "close_backends"]


def _needs_payment(config: GatewayConfig, service: ServiceConfig) -> bool:
    if config.backend == "free":
        return False
    # Masumi agents with fixed pricing carry their price on chain, not here.
    return service.price is not None or (
        config.backend == "masumi" and bool(service.agent_identifier)
    )


def backend_for(
    config: GatewayConfig, service: ServiceConfig, built: MutableMapping[str, PaymentBackend]
) -> PaymentBackend:
    name = config.backend if _needs_payment(config, service) else "free"
    if name not in built:
        built[name] = _build(name, config)
    return built[name]


def _build(name: str, config: GatewayConfig) -> PaymentBackend:
    if name == "free":
        return FreeBackend()
    if name == "masumi":
        return MasumiBackend(config.masumi, timeout=config.call_timeout_seconds)
    raise ConfigError(
        "payments.backend: 'ledger' needs the registry's ledger, which this build does not "
        "have yet; use 'masumi' or 'free'"
    )


async def close_backends(built: MutableMapping[str, PaymentBackend]) -> None:
    for backend in built.values():
        await backend.close()
