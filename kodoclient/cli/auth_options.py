"""What the commands that talk to the registry share (the auth commands `pki`, `user`,
`group`, `login`, `whoami`, `verify`, and `nodes`, `flows --all`, `watch-registry`): the
`--registry` option, and the registry's address and credentials from the global options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kodoclient.auth import AuthClient, RegistryTarget, resolve_registry
from kodoclient.cli.context import CliState

F = TypeVar("F", bound=Callable[..., Any])


def registry_option(command: F) -> F:
    decorated: F = click.option(
        "--registry",
        metavar="HOST:PORT",
        help="The registry (auth provider); default: $KODOSUMI_REGISTRY, the one you logged "
        "in with, a local registryd, 127.0.0.1:7460.",
    )(command)
    return decorated


def registry_target(state: CliState, registry: str | None) -> RegistryTarget:
    """The registry's address and credentials from `--registry` and the global options."""
    s = state.settings
    return resolve_registry(
        address=registry,
        state_dir=s.state,
        ca=s.ca,
        cert=s.cert,
        key=s.key,
        insecure=s.insecure,
        call_timeout=s.timeout,
    )


def auth_client(state: CliState, registry: str | None) -> AuthClient:
    return AuthClient(registry_target(state, registry))
