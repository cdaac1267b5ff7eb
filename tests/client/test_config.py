"""Where the client looks for its node and credentials, in which order."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kodoclient import ConfigError, ConnectConfig, ReconnectPolicy, resolve_config
from kodoclient.config import DEFAULT_TARGET, live_node_file, read_node_file
from kodosumi.tls import ensure_dev_pki


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir holding the development PKI a local node would have created."""
    ensure_dev_pki(tmp_path, "n1")
    return tmp_path


def write_node_json(state: Path, address: str, *, insecure: bool = False, pid: int = 0) -> None:
    data = {"address": address, "node_id": "n1", "insecure": insecure, "pid": pid or os.getpid()}
    (state / "node.json").write_text(json.dumps(data))


def test_default_target_with_dev_credentials(state: Path) -> None:
    config = resolve_config(state_dir=state, env={})
    assert (config.target, config.origin) == (DEFAULT_TARGET, "default")
    assert config.tls is not None
    assert config.tls.ca_cert == (state / "pki" / "ca.pem").read_bytes()
    assert config.tls.cert == (state / "pki" / "client.pem").read_bytes()


def test_node_json_beats_default(state: Path) -> None:
    write_node_json(state, "127.0.0.1:5555")
    config = resolve_config(state_dir=state, env={})
    assert (config.target, config.origin) == ("127.0.0.1:5555", "node.json")


def test_env_beats_node_json(state: Path) -> None:
    write_node_json(state, "127.0.0.1:5555")
    config = resolve_config(state_dir=state, env={"KODOSUMI_NODE": "node-b:7470"})
    assert (config.target, config.origin) == ("node-b:7470", "env")


def test_explicit_beats_env(state: Path) -> None:
    config = resolve_config(
        target="node-c:1", state_dir=state, env={"KODOSUMI_NODE": "node-b:7470"}
    )
    assert (config.target, config.origin) == ("node-c:1", "explicit")


def test_stale_node_json_is_ignored(state: Path) -> None:
    write_node_json(state, "127.0.0.1:5555", pid=424242)
    config = resolve_config(state_dir=state, env={}, alive=lambda pid: False)
    assert config.origin == "default"
    assert live_node_file(state, alive=lambda pid: False) is None
    assert read_node_file(state) is not None


def test_half_written_node_json_reads_as_absent(state: Path) -> None:
    (state / "node.json").write_text('{"address": "127.0')
    assert read_node_file(state) is None


def test_plaintext_node_json_is_trusted_for_its_own_address(tmp_path: Path) -> None:
    write_node_json(tmp_path, "127.0.0.1:5555", insecure=True)
    config = resolve_config(state_dir=tmp_path, env={})
    assert config.tls is None and not config.secure
    # ...but not for an address named elsewhere: that one still needs credentials.
    with pytest.raises(ConfigError) as caught:
        resolve_config(state_dir=tmp_path, env={"KODOSUMI_NODE": "elsewhere:1"})
    assert caught.value.reason == "NO_CREDENTIALS"


@pytest.mark.parametrize(("value", "plaintext"), [("1", True), ("yes", True), ("0", False)])
def test_insecure_from_env(state: Path, value: str, plaintext: bool) -> None:
    config = resolve_config(state_dir=state, env={"KODOSUMI_INSECURE": value})
    assert (config.tls is None) is plaintext


def test_insecure_env_must_be_a_boolean(state: Path) -> None:
    with pytest.raises(ConfigError, match="KODOSUMI_INSECURE"):
        resolve_config(state_dir=state, env={"KODOSUMI_INSECURE": "maybe"})


def test_explicit_insecure_beats_node_json_tls(state: Path) -> None:
    write_node_json(state, "127.0.0.1:5555", insecure=False)
    assert resolve_config(state_dir=state, insecure=True, env={}).tls is None


def test_explicit_files_beat_dev_files(
    state: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    ensure_dev_pki(other, "n2")
    config = resolve_config(
        state_dir=state,
        ca=other / "pki" / "ca.pem",
        cert=other / "pki" / "client.pem",
        key=other / "pki" / "client.key",
        env={"KODOSUMI_INSECURE": "1"},  # explicit files win over the env as well
    )
    assert config.tls is not None
    assert config.tls.ca_cert == (other / "pki" / "ca.pem").read_bytes()
    assert config.tls.cert == (other / "pki" / "client.pem").read_bytes()


def test_explicit_ca_alone_keeps_dev_client_cert(
    state: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = tmp_path_factory.mktemp("other")
    ensure_dev_pki(other, "n2")
    config = resolve_config(state_dir=state, ca=other / "pki" / "ca.pem", env={})
    assert config.tls is not None
    assert config.tls.ca_cert == (other / "pki" / "ca.pem").read_bytes()
    assert config.tls.cert == (state / "pki" / "client.pem").read_bytes()


def test_missing_dev_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_config(state_dir=tmp_path, env={})
    assert caught.value.reason == "NO_CREDENTIALS"
    assert str(tmp_path / "pki") in caught.value.message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cert": Path("c.pem")}, "--cert and --key go together"),
        ({"insecure": True, "ca": Path("ca.pem")}, "contradicts"),
        ({"ca": Path("/nonexistent/ca.pem")}, "no such credential file"),
        ({"call_timeout": 0}, "must be positive"),
    ],
)
def test_inconsistent_settings(state: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_config(state_dir=state, env={}, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason == "BAD_CONFIG"


def test_config_is_frozen_and_hides_the_key(state: Path) -> None:
    config = resolve_config(state_dir=state, env={}, call_timeout=3)
    assert config.call_timeout == 3
    assert "PRIVATE KEY" not in repr(config)
    with pytest.raises(AttributeError):
        config.target = "x"  # type: ignore[misc]


def test_defaults() -> None:
    config = ConnectConfig(target="127.0.0.1:1")
    assert config.tls is None and config.call_timeout == 10
    assert config.reconnect == ReconnectPolicy()
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)
