"""Fixtures of the client tests: a scripted node on loopback and a fast reconnect policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kodoclient import ConnectConfig, ReconnectPolicy

from .fake_node import FakeNode

# Resume quickly in tests; the shape of the backoff is tested on its own.
FAST_RECONNECT = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.05, max_attempts=5)


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    node = FakeNode()
    node.start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def fake_config(fake_node: FakeNode) -> ConnectConfig:
    return ConnectConfig(
        target=fake_node.address, tls=None, call_timeout=5, reconnect=FAST_RECONNECT
    )
