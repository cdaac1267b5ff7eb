"""What the auth commands (`pki`, `user`, `group`, `login`, `whoami`, `verify`) share: the
`--registry` option and a client of the auth provider built from the global options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from kodoclient.auth import AuthClient, resolve_registry
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


def auth_client(state: CliState, registry: str | None) -> AuthClient:
    s = state.settings
    return AuthClient(
        resolve_registry(
            address=registry,
            state_dir=s.state,
            ca=s.ca,
            cert=s.cert,
            key=s.key,
            insecure=s.insecure,
            call_timeout=s.timeout,
        )
    )
