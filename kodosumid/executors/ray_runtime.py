"""Start an embedded local Ray, or join an existing cluster, with offline-safe settings."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from kodosumid.config import RayConfig

log = logging.getLogger(__name__)

# Settings that keep Ray on loopback and off the network (see RUNTIME-NOTES): no usage
# stats, no cloud-metadata probing, no prestarted workers we do not use.
_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_prestart_worker_first_driver": "0",
}
# What executor processes need: CrewAI must neither phone home nor check for updates.
EXECUTOR_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "PYTHONUNBUFFERED": "1",
}


def _offline_home() -> None:
    """Ray's head probes cloud metadata addresses unless this file exists in $HOME."""
    home = Path(os.environ.get("HOME", "~")).expanduser()
    marker = home / "ray_bootstrap_config.yaml"
    try:
        if not marker.exists():
            marker.write_text("provider: {type: local}\n")
    except OSError:
        log.warning("cannot write %s; Ray may probe cloud metadata addresses", marker)


def start_ray(config: RayConfig) -> str:
    """Initialise Ray in this process (the driver); returns `embedded` or the cluster address."""
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return "embedded" if config.embedded else config.address
    _offline_home()
    if config.embedded:
        ray.init(
            # "local": always a new instance. With no address, ray.init joins the last
            # cluster `ray start` left on this machine (/tmp/ray/ray_current_cluster).
            address="local",
            num_cpus=config.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=config.object_store_memory,
            namespace=config.namespace,
            _node_ip_address="127.0.0.1",
            configure_logging=False,
        )
        return "embedded"
    ray.init(
        address=config.address,
        namespace=config.namespace,
        log_to_driver=False,
        configure_logging=False,
    )
    return config.address


def stop_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()
