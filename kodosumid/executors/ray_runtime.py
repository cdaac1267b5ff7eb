"""Start an embedded local Ray, or join an existing cluster, with offline-safe settings.

The embedded Ray is reachable from this host only: every process of it (GCS, raylet, the
runtime-env agent, every worker) listens on 127.0.0.1, and its token (Ray >= 2.60 token
authentication) lives in the node's state directory, mode 0600, never in `~/.ray`.
A Ray cluster the node joins (`--ray-address`) is the operator's to secure
(docs/operations.md).

The embedded Ray's session (logs, sockets, spilled objects) lives in the node's state
directory too (`<state>/ray/session`), not in the shared `/tmp/ray`, and is removed when
the node stops (`ray_session.py`).

Ray's own log lines go through the node's logging (text or JSON, like every other line),
and what its workers write reaches the node's output (`ray_output.py`), never its stderr
raw.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
from ray._private import ray_constants

from kodosumid.config import RayConfig
from kodosumid.executors.ray_output import forward_worker_output
from kodosumid.executors.ray_session import remove_own, session_root

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Settings that keep Ray off the network (see RUNTIME-NOTES): no usage stats, no
# cloud-metadata probing, no prestarted workers we do not use. Deliberately not
# `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`: inherited by a `ray start --address` it makes a
# worker host refuse to join ("Multi-node Ray clusters are not supported").
_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_prestart_worker_first_driver": "0",
}
# What executor processes need: CrewAI must neither phone home nor check for updates.
EXECUTOR_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
}
# Where Ray finds its token (read by its C++ token loader, inherited by its processes).
AUTH_TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
# The session folder of the embedded Ray this process started, and whether it is private
# (`ray_session.py`; removed by `stop_ray`).
_session: tuple[Path, bool] | None = None


def _offline_home() -> None:
    """Ray's head probes cloud metadata addresses unless this file exists in $HOME."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    marker = home / "ray_bootstrap_config.yaml"
    try:
        if not marker.exists():
            marker.write_text("provider: {type: local}\n")
    except OSError:
        log.warning("cannot write %s; Ray may probe cloud metadata addresses", marker)


def token_path(state_dir: Path) -> Path:
    return state_dir / "ray" / "auth_token"


def private_token(state_dir: Path) -> Path:
    """The embedded Ray's token: created once in the node's state directory, mode 0600 in a
    0700 folder, and named to Ray by path (its processes inherit the path, not the token)."""
    path = token_path(state_dir)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))  # what `ray get-auth-token --generate` makes
    os.chmod(path, 0o600)
    # Token mode itself is Ray's default for a new local cluster (`ray.init` turns it on
    # and refreshes its cached config); setting RAY_AUTH_MODE here would come too late for
    # this process's cached config.
    os.environ[AUTH_TOKEN_PATH_ENV] = str(path)
    return path


@contextlib.contextmanager
def _loopback_node_ip() -> Iterator[None]:
    """Let `ray.init(_node_ip_address="127.0.0.1")` mean it.

    Ray replaces a loopback node address with the host's routable one unless it believes
    clusters are disabled (`services.get_node_ip_address`), and then every process of the
    node listens on all interfaces. The public switch for that is an environment variable
    every child inherits (see `_RAY_ENV`); this flips Ray's constant for this call only.
    Its children get `--node-ip-address=127.0.0.1` and bind to it.
    """
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _remove_session() -> None:
    global _session
    if _session is not None:
        remove_own(*_session)
        _session = None


def _ray_logs_into_ours() -> None:
    """Ray's loggers print through a handler of their own (set when ray is imported):
    send their records to the root logger instead, in the node's format."""
    ray_logger = logging.getLogger("ray")
    ray_logger.handlers.clear()
    ray_logger.propagate = True


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def start_ray(
    config: RayConfig, state_dir: Path | None = None, runtime_env: dict[str, Any] | None = None
) -> str:
    """Initialise Ray in this process (the driver); returns `embedded` or the cluster address.

    `state_dir`: where the embedded Ray keeps its token (None: Ray's default, `~/.ray`).
    `runtime_env`: the job's runtime environment on a cluster (the flows' code,
    `code_shipping.py`); the embedded Ray runs on this host and needs none."""
    global _session
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return "embedded" if config.embedded else config.address
    _offline_home()
    _ray_logs_into_ours()
    if config.embedded:
        temp_dir = None
        if state_dir is not None:
            private_token(state_dir)
            _session = session_root(state_dir)
            temp_dir = _session[0]
        try:
            with _loopback_node_ip():
                ray.init(
                    # "local": always a new instance. With no address, ray.init joins the
                    # last cluster `ray start` left here (/tmp/ray/ray_current_cluster).
                    address="local",
                    num_cpus=config.num_cpus,
                    include_dashboard=False,
                    log_to_driver=True,  # to the node's output (ray_output.py)
                    object_store_memory=config.object_store_memory,
                    namespace=config.namespace,
                    _node_ip_address=LOOPBACK,
                    _temp_dir=str(temp_dir) if temp_dir is not None else None,
                    configure_logging=False,
                )
        except BaseException:
            _remove_session()
            raise
        forward_worker_output()
        return "embedded"
    if _is_loopback(config.address):
        # A cluster on this host only (tests, a single-host operator): so is this driver.
        with _loopback_node_ip():
            ray.init(
                address=config.address,
                namespace=config.namespace,
                log_to_driver=True,
                configure_logging=False,
                runtime_env=runtime_env or None,
                _node_ip_address=LOOPBACK,
            )
        forward_worker_output()
        return config.address
    ray.init(
        address=config.address,
        namespace=config.namespace,
        log_to_driver=True,
        configure_logging=False,
        runtime_env=runtime_env or None,
    )
    forward_worker_output()
    return config.address


def stop_ray() -> None:
    """Stop this driver's Ray; an embedded Ray's session folder goes with it."""
    if ray.is_initialized():
        ray.shutdown()
    _remove_session()
