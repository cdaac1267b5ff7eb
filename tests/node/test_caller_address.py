"""`ctx.call_flow` dials the node's advertised address (issue 12): executors may run on other
hosts, so a node listening on 0.0.0.0 must never hand them 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from kodosumid.app import NodeApp
from tests.node.conftest import node_config


def test_executors_dial_the_advertised_address_not_loopback(tmp_path: Path) -> None:
    app = NodeApp(node_config(tmp_path, listen="0.0.0.0:7470", advertise=("10.1.2.3:7470",)))
    app.port = 7470
    app.endpoints = ("10.1.2.3:7470",)  # what `start` derives from listen + advertise
    settings = app._caller_settings()
    assert settings.address == "10.1.2.3:7470"
    assert app.address == "127.0.0.1:7470"  # the local view differs: executors never get it
    assert not hasattr(settings, "key") and not hasattr(settings, "flows_dir")  # no paths
