"""The SDK's public surface is pinned, and the client never pulls in daemons or Ray."""

from __future__ import annotations

import subprocess
import sys

import kodoclient

EXPORTED = {
    "TERMINAL_STATUSES",
    "AsyncClient",
    "Client",
    "ConfigError",
    "ConnectConfig",
    "FieldViolation",
    "FollowState",
    "KodoclientError",
    "NodeFile",
    "ReconnectPolicy",
    "RegistryClient",
    "RegistrySnapshot",
    "fold",
    "is_terminal",
    "open_input_requests",
    "parse_status",
    "resolve_config",
    "status_name",
}


def test_exported_names_are_pinned() -> None:
    assert set(kodoclient.__all__) == EXPORTED
    for name in EXPORTED:
        assert getattr(kodoclient, name) is not None


def test_sync_and_async_clients_offer_the_same_calls() -> None:
    def public(cls: type) -> set[str]:
        return {n for n in vars(cls) if not n.startswith("_")}

    assert public(kodoclient.Client) == public(kodoclient.AsyncClient)


def test_importing_the_cli_loads_no_daemon_engine_or_ray() -> None:
    code = (
        "import sys, kodoclient, kodoclient.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'kodosumid', 'registryd', 'engine', 'ray', 'crewai'}); print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
