"""`make demo-market` end to end (tools/demo_market.py as a subprocess, as make runs it):
a receipt that verifies offline, a balance that moved by the receipts' amounts, a job bought
over MIP-003 that completed, and no daemon left running afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "demo_market.py"


def demo(home: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--home", str(home)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def processes_naming(text: str) -> list[str]:
    """Command lines of running processes that mention `text` (the demo's home)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.mark.slow
def test_the_market_demo_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "market"
    done = demo(home, timeout=180)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    # A quote and two receipts verified offline with the CA certificate.
    assert "valid quote" in out
    assert out.count("valid receipt") == 2
    receipts = list(home.glob("*.receipt.json"))
    assert len(receipts) == 2
    charged = sum(float(json.loads(r.read_text())["receipt"]["amount"]) for r in receipts)
    assert charged > 0
    # The balance moved by exactly what the receipts say (the demo compares them as decimals).
    assert "balance moved by the receipts' amounts: ok" in out
    assert "settle" in out  # `koco ledger` lists the settlements
    assert "bronze" in out  # `koco market` shows the badges earned
    # The MIP-003 job: started with curl, completed, its result the flow's.
    assert "$ curl -s -X POST" in out and "/hello/start_job" in out
    assert '"status": "completed"' in out and "MIP-003 job completed" in out
    assert '"result": "Hello, MIP-003!"' in out
    assert "the service's price 0.50 EUR" in out  # the user's balance moved by it
    # Nothing left running.
    assert "$ kodosumid --config" in out and "$ kodogate serve" in out
    assert processes_naming(str(home)) == []


def test_a_folder_that_is_not_a_demo_home_is_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    (home / "precious.txt").write_text("keep me")
    done = demo(home, timeout=60)
    assert done.returncode == 1
    assert "is not a demo home" in done.stderr
    assert (home / "precious.txt").read_text() == "keep me"


@pytest.mark.slow
def test_ctrl_c_mid_demo_stops_every_daemon(tmp_path: Path) -> None:
    home = tmp_path / "market"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    demo = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--home", str(home)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    seen = []
    try:
        for line in demo.stdout:  # the demo ends by itself if the line never comes
            seen.append(line)
            if "the admin grants credit" in line:  # registry and both nodes are up
                demo.send_signal(signal.SIGINT)
                break
        rest, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    out = "".join(seen) + rest
    assert demo.returncode == 130, out[-3000:]
    assert "interrupted" in out and "stopping registryd" in out
    assert processes_naming(str(home)) == []
