"""Fixtures of the multi-host tests: a LAN of network namespaces on a bridge
(`tests/multihost/netns.py`). Where namespaces cannot be made (no root, no `ip`) every
test here is skipped with the reason, and the reason is also raised as a warning so that
it shows in the summary of any run, not only with `-rs`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from tests.multihost.deployment import Deployment, Machine
from tests.multihost.netns import Lan, lan_unavailable


@pytest.fixture(scope="session")
def lan_reason() -> str:
    return lan_unavailable()


def skip_without_lan(reason: str) -> None:
    if reason:
        message = f"MULTI-HOST TESTS SKIPPED: {reason}"
        warnings.warn(message, stacklevel=2)
        pytest.skip(message)


@pytest.fixture
def lan3(lan_reason: str) -> Iterator[Lan]:
    """Three hosts: 10.213.0.11 (h1), .12 (h2), .13 (h3)."""
    skip_without_lan(lan_reason)
    lan = Lan(3)
    try:
        yield lan
    finally:
        lan.close()


@pytest.fixture(scope="package")  # torn down when the last multi-host test is done
def deployment(lan_reason: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A registry, two nodes, a laptop and a Ray worker host on five hosts of a namespace
    LAN (`deployment.py`), shared by the deployment tests and the Ray cluster test."""
    skip_without_lan(lan_reason)
    root = tmp_path_factory.mktemp("lan")
    lan = Lan(5)
    try:
        machines = [Machine(host, root / host.name) for host in lan.hosts]
        deployment = Deployment(lan, *machines)
        deployment.start()
        yield deployment
    finally:
        lan.close()
