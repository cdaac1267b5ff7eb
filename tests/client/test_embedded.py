"""`koco run` brings its own node: a real subprocess (a scripted stand-in for kodosumid)
that is waited for by polling node.json and a call, and stopped with SIGTERM.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kodoclient import KodoclientError
from kodoclient.cli import main
from kodoclient.cli.context import CliState
from kodoclient.cli.embedded import embedded_node
from kodoclient.config import pid_alive

from .fake_node import FakeNode

FAKE_DAEMON = (sys.executable, str(Path(__file__).with_name("fake_kodosumid.py")))


def run_koco(*args: str) -> tuple[int, str, str]:
    state = CliState(node_command=FAKE_DAEMON)
    result = CliRunner().invoke(main, list(args), obj=state, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_run_starts_and_stops_an_embedded_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KODOSUMI_NODE", raising=False)
    monkeypatch.delenv("KODOSUMI_INSECURE", raising=False)
    code, out, err = run_koco("--state-dir", str(tmp_path), "run", "hello", "-i", "name=Em")
    assert code == 0, err
    assert "starting an embedded node" in err and "embedded node embedded-fake serving" in err
    assert "Hello, Em!" in out
    # It ran in the user's state dir (dev PKI kept) and left no node.json behind.
    assert (tmp_path / "pki" / "client.pem").is_file()
    assert not (tmp_path / "node.json").exists()
    assert "serving on" in (tmp_path / "embedded-node.log").read_text()


def test_an_entrypoint_missing_from_the_running_node_gets_its_own_node(
    tmp_path: Path, fake_node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KODOSUMI_NODE", raising=False)
    monkeypatch.delenv("KODOSUMI_INSECURE", raising=False)
    # A plaintext node owns the state dir, found through its node.json.
    info = {"address": fake_node.address, "node_id": "x", "insecure": True, "pid": os.getpid()}
    (tmp_path / "node.json").write_text(json.dumps(info))
    code, out, err = run_koco("--state-dir", str(tmp_path), "--json", "run", "flows.other:main")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["status_changed"]["status"] == (
        "EXECUTION_STATUS_SUCCEEDED"
    )
    assert fake_node.runs == {}  # nothing ran on the standing node
    assert json.loads((tmp_path / "node.json").read_text()) == info  # its file untouched


async def test_a_node_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    command = (sys.executable, "-c", "import sys; print('cannot start: boom'); sys.exit(3)")
    with pytest.raises(KodoclientError) as caught:
        async with embedded_node(state_dir=tmp_path, command=command, startup_timeout=30):
            pass
    assert caught.value.reason == "EMBEDDED_NODE_FAILED"
    assert "exited with code 3" in caught.value.message and "boom" in caught.value.message


async def test_the_node_is_stopped_on_the_way_out(tmp_path: Path) -> None:
    async with embedded_node(state_dir=None, command=FAKE_DAEMON, insecure=True) as node:
        assert node.config.tls is None and pid_alive(node.pid)
        state = node.state_dir
    assert not pid_alive(node.pid) or _is_zombie(node.pid)
    assert not state.exists()  # the temporary state dir is gone


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False
