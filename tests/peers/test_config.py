"""The node's registry, discovery and peer settings: TOML sections, environment, flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kodosumi.errors import InvalidArgument
from kodosumid.app import check_advertise
from kodosumid.cli import build_config, parse_args
from kodosumid.config import DiscoveryConfig, PeersConfig, RegistryClientConfig, load_config
from registryd.cli import build_parser, config_from_args

TOML = """
[node]
id = "node-a"
advertise = ["node-a.example:7470"]

[registry]
address = "registry.example:7460"
heartbeat_interval = 5.0
retry_max_seconds = 10.0

[discovery]
enabled = false
interfaces = ["10.0.0.5"]

[peers]
forward = false
relay_grace_seconds = 12.0
"""


def test_sections_are_read(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(TOML)
    config = load_config(path, env={})
    assert config.advertise == ("node-a.example:7470",)
    assert config.registry_address == "registry.example:7460"
    assert config.registry == RegistryClientConfig(heartbeat_interval=5.0, retry_max_seconds=10.0)
    assert config.discovery == DiscoveryConfig(enabled=False, interfaces=("10.0.0.5",))
    assert config.peers == PeersConfig(forward=False, relay_grace_seconds=12.0)


def test_defaults_no_registry_lan_on_forwarding_on() -> None:
    config = load_config(None, env={})
    assert config.registry_address == "" and config.discovery.enabled and config.peers.forward


def test_environment_and_flags_override(tmp_path: Path) -> None:
    assert load_config(None, env={"KODOSUMI_REGISTRY": "r:1"}).registry_address == "r:1"
    path = tmp_path / "node.toml"
    path.write_text(TOML)
    config = build_config(parse_args(["--config", str(path), "--registry", "r:2", "--lan"]))
    assert config.registry_address == "r:2" and config.discovery.enabled
    assert config.discovery.interfaces == ("10.0.0.5",)
    assert not build_config(parse_args(["--no-lan"])).discovery.enabled


def test_advertise_from_toml_environment_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(TOML)
    env = {"KODOSUMI_ADVERTISE": "10.0.0.5:7470, node-a.lan"}
    assert load_config(path, env=env).advertise == ("10.0.0.5:7470", "node-a.lan")
    args = ["--config", str(path), "--advertise", "a:1", "--advertise", "b"]
    assert build_config(parse_args(args)).advertise == ("a:1", "b")


def test_a_wildcard_listen_with_a_wildcard_advertised_is_refused_naming_the_fix() -> None:
    config = build_config(parse_args(["--listen", "0.0.0.0:7470", "--advertise", "0.0.0.0"]))
    with pytest.raises(InvalidArgument) as error:
        check_advertise(config)
    assert "--advertise HOST:PORT" in str(error.value)
    assert error.value.violations[0].field == "node.advertise"


def test_registryd_flags_for_advertise_and_certificate_names() -> None:
    args = build_parser().parse_args(
        ["--listen", "0.0.0.0:7460", "--advertise", "10.0.0.1:7460", "--tls-host", "reg.lan"]
    )
    config = config_from_args(args)
    assert config.listen == "0.0.0.0:7460"
    assert config.advertise == ("10.0.0.1:7460",)
    assert config.tls.hosts == ("reg.lan",)
