"""Reading the node's configuration: the TOML file, then `KODOSUMI_*` variables; and the
node id kept in the state directory."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from kodosumi.config_loader import ConfigError, TomlFile, build, read_toml, table
from kodosumi.errors import InvalidArgument
from kodosumi.paths import default_state_dir
from kodosumi.telemetry import TelemetryConfig
from kodosumid.config.a2a import A2AConfig
from kodosumid.config.auth import AuthClientConfig
from kodosumid.config.executors import PoolConfig, RayConfig
from kodosumid.config.flows import flows_from
from kodosumid.config.network import DiscoveryConfig, PeersConfig, RegistryClientConfig
from kodosumid.config.node import DEFAULT_LISTEN, NodeConfig, TlsPaths
from kodosumid.files.model import FilesConfig
from kodosumid.observability.rules import alerts_config
from kodosumid.quotas import quotas_config

_C = TypeVar("_C")


def load_config(path: Path | None = None, env: dict[str, str] | None = None) -> NodeConfig:
    """Read the TOML file (if any), then apply `KODOSUMI_*` environment overrides.

    The file is read by the daemons' shared loader (`kodosumi.config_loader`): a syntax
    error or a bad key names the file and line; both surface as INVALID_ARGUMENT.
    """
    try:
        return _load(path, env)
    except ConfigError as e:
        raise InvalidArgument(str(e)) from None


def _section(cls: type[_C], file: TomlFile, name: str, raw: Any, base: Path) -> _C:
    """One table of the file as its typed dataclass (unknown keys and bad types named)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{file.where((), name)}: [{name}] must be a table")
    return build(cls, table(cls, raw, base=base, file=file, path=(name,)))


def _load(path: Path | None, env: dict[str, str] | None) -> NodeConfig:
    env = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    file: TomlFile | None = None
    if path is not None:
        file = read_toml(path)
        data = file.data
    node = data.get("node", {})
    base = path.parent if path is not None else Path.cwd()
    config = NodeConfig(
        node_id=str(node.get("id", "")),
        listen=str(node.get("listen", DEFAULT_LISTEN)),
        state_dir=_path(node["state_dir"], base) if "state_dir" in node else default_state_dir(),
        insecure=bool(node.get("insecure", False)),
        insecure_allow_remote=bool(node.get("insecure_allow_remote", False)),
        trust_domain=str(node.get("trust_domain", "")),
        shutdown_grace_seconds=float(node.get("shutdown_grace_seconds", 10.0)),
        cancel_grace_seconds=float(node.get("cancel_grace_seconds", 5.0)),
        admins=tuple(node.get("admins", ())),
        operators=tuple(node.get("operators", ())),
        store_synchronous=str(node.get("store_synchronous", "NORMAL")).upper(),
        retention_seconds=float(node.get("retention_seconds", 0.0)),
        python_path=tuple(str(_path(p, base)) for p in node.get("python_path", ())),
        advertise=tuple(node.get("advertise", ())),
    )
    if "tls" in data:
        tls = data["tls"]
        config = replace(
            config,
            tls=TlsPaths(
                _path(tls["ca_cert"], base), _path(tls["cert"], base), _path(tls["key"], base)
            ),
        )
    if file is not None:
        sections: dict[str, type[Any]] = {
            "ray": RayConfig,
            "pool": PoolConfig,
            "discovery": DiscoveryConfig,
            "peers": PeersConfig,
            "auth": AuthClientConfig,
            "a2a": A2AConfig,
            "files": FilesConfig,
        }
        if isinstance(data.get("files"), dict) and "stored_bytes_per_owner" in data["files"]:
            raise ConfigError(
                f"{file.where(('files',), 'stored_bytes_per_owner')}: files.stored_bytes_per_owner "
                "moved to [quotas] file_bytes (per identity, with [quotas.roles.X] and "
                "[quotas.groups.X])"
            )
        for name, cls in sections.items():
            if name in data:
                config = replace(config, **{name: _section(cls, file, name, data[name], base)})
        if "registry" in data:
            registry = data["registry"]
            address = ""
            if isinstance(registry, dict):
                registry = dict(registry)
                address = str(registry.pop("address", ""))
            config = replace(
                config,
                registry_address=address,
                registry=_section(RegistryClientConfig, file, "registry", registry, base),
            )
        config.peers.check()
    if "telemetry" in data:
        try:
            config = replace(config, telemetry=TelemetryConfig.from_mapping(data["telemetry"]))
        except ValueError as e:
            raise InvalidArgument.field("telemetry", str(e)) from None
    if "alerts" in data:
        config = replace(config, alerts=alerts_config(data["alerts"]))
    if "quotas" in data:
        config = replace(config, quotas=quotas_config(data["quotas"]))
    if "flows" in data:
        flows = [dict(raw) for raw in data["flows"]]
        for raw in flows:
            entry = str(raw.get("entrypoint", ""))
            if entry.endswith((".yaml", ".yml")):
                raw["entrypoint"] = str(_path(entry, base))
        try:
            config = replace(config, flows=flows_from(flows))
        except InvalidArgument as e:
            raise _located(e, file) from None
    return _apply_env(config, env)


def _located(error: InvalidArgument, file: TomlFile | None) -> InvalidArgument:
    """A catalog mistake with the file and line of its key (`node.toml:12: flows[1].…`)."""
    if file is None or not error.violations:
        return error
    lines = []
    for violation in error.violations:
        head, _, rest = violation.field.partition("].")
        index = head.removeprefix("flows[")
        line = None
        if index.isdigit():
            path = tuple(rest.split(".")) if rest else ()
            line = file.line_of_item("flows", int(index), path)
        at = f"{file.path}:{line}" if line is not None else str(file.path)
        lines.append(f"{at}: {violation.field}: {violation.description}")
    return InvalidArgument("; ".join(lines), violations=error.violations)


def _apply_env(config: NodeConfig, env: dict[str, str]) -> NodeConfig:
    if "KODOSUMI_NODE_ID" in env:
        config = replace(config, node_id=env["KODOSUMI_NODE_ID"])
    if "KODOSUMI_LISTEN" in env:
        config = replace(config, listen=env["KODOSUMI_LISTEN"])
    if env.get("KODOSUMI_INSECURE", "").lower() in {"1", "true", "yes"}:
        config = replace(config, insecure=True)
    if env.get("KODOSUMI_INSECURE_ALLOW_REMOTE", "").lower() in {"1", "true", "yes"}:
        config = replace(config, insecure_allow_remote=True)
    if "KODOSUMI_RAY_ADDRESS" in env:
        config = replace(config, ray=replace(config.ray, address=env["KODOSUMI_RAY_ADDRESS"]))
    if env.get("KODOSUMI_ADVERTISE", "").strip():
        advertise = tuple(a.strip() for a in env["KODOSUMI_ADVERTISE"].split(",") if a.strip())
        config = replace(config, advertise=advertise)
    if "KODOSUMI_REGISTRY" in env:
        config = replace(config, registry_address=env["KODOSUMI_REGISTRY"])
    return config


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def ensure_node_id(config: NodeConfig) -> NodeConfig:
    """A node keeps its id across restarts: generated once and stored in the state directory."""
    if config.node_id:
        return config
    id_file = config.state_dir / "node_id"
    if id_file.is_file():
        node_id = id_file.read_text().strip()
    else:
        node_id = f"node-{uuid.uuid4().hex[:8]}"
        config.state_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(node_id + "\n")
    return replace(config, node_id=node_id)
