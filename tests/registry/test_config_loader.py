"""The daemons' one configuration loader (`kodosumi.config_loader`): typed frozen
dataclasses from TOML, environment over file, flags over both, and errors that name the file
and line (or the variable) of what is wrong — also for the node's tables."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kodosumi.config_loader import ConfigError, load, read_toml
from kodosumi.errors import InvalidArgument
from kodosumid.config import load_config as load_node_config
from registryd.config import load_config as load_registry_config


@dataclass(frozen=True, slots=True)
class Inner:
    interval: float = 1.0
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outer:
    listen: str = "127.0.0.1:1"
    enabled: bool = True
    count: int = 3
    folder: Path | None = None
    inner: Inner = field(default_factory=Inner)


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('listen = "0.0.0.0:9"\nfolder = "state"\n[inner]\nnames = ["a", "b"]\n')
    env = {"X_COUNT": "7", "X_INNER_INTERVAL": "2.5", "X_LISTEN": "127.0.0.1:8"}
    config = load(Outer, path, env=env, prefix="X_", overrides={"enabled": False, "count": None})
    assert config == Outer(
        listen="127.0.0.1:8",
        enabled=False,
        count=7,
        folder=tmp_path / "state",
        inner=Inner(interval=2.5, names=("a", "b")),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.count = 1  # type: ignore[misc]
    assert load(Outer, None, env={}, prefix="X_") == Outer()


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('listen = "a"\n\n[inner]\ninterval = "soon"\n', {}, r"x\.toml:4: inner\.interval: not a"),
        ("count = 1\nenabeld = true\n", {}, r"x\.toml:2: enabeld: unknown key 'enabeld'"),
        ("[inner]\nnames = 3\n", {}, r"x\.toml:2: inner\.names: expected a list"),
        ("count = 1\ninner = [", {}, r"x\.toml:2: "),
        ("", {"X_INNER_INTERVAL": "soon"}, r"^X_INNER_INTERVAL: not a number"),
    ],
)
def test_errors_name_the_file_and_line_or_the_variable(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(Outer, path, env=env, prefix="X_")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        read_toml(tmp_path / "nope.toml")


def test_the_registry_names_the_line_of_a_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    path.write_text('listen = "127.0.0.1:0"\n[lease]\nrestart_grace = 5\nttl = 3\n')
    with pytest.raises(ConfigError, match=r"registry\.toml:4: lease\.ttl: unknown key 'ttl'"):
        load_registry_config(path, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ray]\nnum_cpus = 2\nadress = 'x'\n", r"node\.toml:3: ray\.adress: unknown key"),
        ("[pool]\nshared_executors = 'two'\n", r"node\.toml:2: pool\.shared_executors: not an"),
        ("[registry]\naddress = 'r:1'\nheartbeat_interval = 'often'\n", r"node\.toml:3: regis"),
        ("[discovery]\nenabled = 'maybe'\n", r"node\.toml:2: discovery\.enabled: not a boolean"),
        ("[node]\nid = 'a'\n[peers\n", r"node\.toml:3:\d+: "),
        ("ray = 3\n", r"node\.toml:1: \[ray\] must be a table"),
    ],
)
def test_the_node_names_the_line_of_a_bad_key_as_invalid_argument(
    tmp_path: Path, text: str, message: str
) -> None:
    """Before, a typo in these tables crashed the node with a TypeError traceback."""
    path = tmp_path / "node.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument, match=message):
        load_node_config(path, env={})


def test_the_node_reads_its_tables_as_before(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[ray]\naddress = "127.0.0.1:6379"\nnum_cpus = 4\n'
        '[pool]\npreload_modules = ["a", "b"]\nwarm_executors = 0\n'
        '[registry]\naddress = "r:7460"\nheartbeat_interval = 5\n'
        '[discovery]\ninterfaces = ["10.0.0.5"]\n'
        "[auth]\ngrants_cache_seconds = 2\n"
    )
    config = load_node_config(path, env={})
    assert (config.ray.address, config.ray.num_cpus) == ("127.0.0.1:6379", 4)
    assert config.pool.preload_modules == ("a", "b") and config.pool.warm_executors == 0
    assert config.registry_address == "r:7460" and config.registry.heartbeat_interval == 5.0
    assert config.discovery.interfaces == ("10.0.0.5",) and config.discovery.enabled
    assert config.auth.grants_cache_seconds == 2.0
