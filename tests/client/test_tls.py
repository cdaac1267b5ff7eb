"""mTLS with a throwaway PKI: the resolved config connects, a foreign CA is rejected."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from kodoclient import Client, ConnectConfig, KodoclientError, resolve_config
from kodoclient.cli import exit_codes as ec
from kodoclient.cli import main
from kodosumi.tls import ensure_dev_pki

from .fake_node import FakeNode


@pytest.fixture
def tls_node(tmp_path: Path) -> Iterator[tuple[FakeNode, Path]]:
    state = tmp_path / "state"
    node_files, _, _ = ensure_dev_pki(state, "n1")
    node = FakeNode()
    node.start(tls=node_files.read())
    info = {"address": node.address, "node_id": "n1", "insecure": False, "pid": os.getpid()}
    (state / "node.json").write_text(json.dumps(info))
    try:
        yield node, state
    finally:
        node.close()


def test_node_json_and_dev_credentials_connect(tls_node: tuple[FakeNode, Path]) -> None:
    _, state = tls_node
    config = resolve_config(state_dir=state, env={})
    assert config.origin == "node.json" and config.secure
    with Client(config) as client:
        assert client.node_info().node_id == "fake-node"
    result = CliRunner().invoke(main, ["--state-dir", str(state), "--json", "flows"])
    assert result.exit_code == 0 and '"name":"hello"' in result.stdout


def test_foreign_ca_is_rejected_as_unavailable(
    tls_node: tuple[FakeNode, Path], tmp_path: Path
) -> None:
    node, _ = tls_node
    _, foreign, _ = ensure_dev_pki(tmp_path / "other", "n2")
    config = ConnectConfig(target=node.address, tls=foreign.read(), call_timeout=3)
    with Client(config) as client, pytest.raises(KodoclientError) as caught:
        client.node_info()
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    flags = ["--ca", foreign.ca_cert, "--cert", foreign.cert, "--key", foreign.key]
    result = CliRunner().invoke(
        main, ["--node", node.address, "--timeout", "3", *map(str, flags), "flows"]
    )
    assert result.exit_code == ec.UNREACHABLE.code


def test_plaintext_client_cannot_talk_to_a_tls_node(tls_node: tuple[FakeNode, Path]) -> None:
    node, _ = tls_node
    result = CliRunner().invoke(
        main, ["--node", node.address, "--insecure", "--timeout", "3", "flows"]
    )
    assert result.exit_code == ec.UNREACHABLE.code
