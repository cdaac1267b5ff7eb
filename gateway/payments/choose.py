"""Which payment backend serves a service: `free` for services that ask nothing, else the
configured one (`[payments] backend`), built once and shared by the services using it."""

from __future__ import annotations

from collections.abc import MutableMapping

from gateway.config import ConfigError, GatewayConfig, ServiceConfig
from gateway.payments.backend import PaymentBackend
from gateway.payments.free import FreeBackend
from gateway.payments.ledger import LedgerBackend
from gateway.payments.masumi import MasumiBackend
from kodosumi.ledger_client import LedgerTarget
from kodosumi.tls import TlsMaterial

__all__ = ["backend_for", "close_backends"]


def _needs_payment(config: GatewayConfig, service: ServiceConfig) -> bool:
    if config.backend == "free":
        return False
    # Masumi agents with fixed pricing carry their price on chain, not here.
    return service.price is not None or (
        config.backend == "masumi" and bool(service.agent_identifier)
    )


def backend_for(
    config: GatewayConfig,
    service: ServiceConfig,
    built: MutableMapping[str, PaymentBackend],
    tls: TlsMaterial | None,
) -> PaymentBackend:
    name = config.backend if _needs_payment(config, service) else "free"
    if name not in built:
        built[name] = _build(name, config, service, tls)
    return built[name]


def _build(
    name: str, config: GatewayConfig, service: ServiceConfig, tls: TlsMaterial | None
) -> PaymentBackend:
    if name == "free":
        return FreeBackend()
    if name == "masumi":
        return MasumiBackend(config.masumi, timeout=config.call_timeout_seconds)
    ledger = config.ledger
    if not ledger.registry:
        raise ConfigError(
            f"payments.ledger.registry: required: service {service.path!r} has a price and "
            "the backend is the ledger (the registry's address)"
        )
    if service.price is not None and not service.price.currency:
        raise ConfigError(f"services ({service.path}).price.currency: required with the ledger")
    target = LedgerTarget(
        ledger.registry, tls, ledger.registry_id, call_timeout=config.call_timeout_seconds
    )
    return LedgerBackend(target, config.gateway_id, ledger.hold_ttl_seconds)


async def close_backends(built: MutableMapping[str, PaymentBackend]) -> None:
    for backend in built.values():
        await backend.close()
