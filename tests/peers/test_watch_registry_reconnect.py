"""`koco watch-registry` (the real CLI, as a process) across a registry restart: it says it
is reconnecting while the registry is away, that it is back once it answers, and shows every
change once — none lost, none repeated — also with no registry at all for a while."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.peers.test_registry_cli import Reg, reg, start  # noqa: F401  (reg: the fixture)

REPO = Path(__file__).resolve().parents[2]


async def _until(check: Callable[[str], bool], what: str, out: Path, timeout: float = 30) -> None:
    """Poll the watcher's output without blocking the loop: the registry runs on it."""
    deadline = time.monotonic() + timeout
    while not check(text := await asyncio.to_thread(out.read_text)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {text[-3000:]}")
        await asyncio.sleep(0.05)


def _watch(registry: Reg, out: Path, *args: str) -> subprocess.Popen[bytes]:
    cert, key = registry.user_files
    command = [sys.executable, "-m", "kodoclient", "--state-dir", str(registry.folder / "c")]
    command += ["--ca", str(registry.pki.ca_cert), "--cert", str(cert), "--key", str(key)]
    command += [*args, "watch-registry", "--after", "0", "--registry", registry.address]
    return subprocess.Popen(command, cwd=REPO, stdout=out.open("wb"), stderr=subprocess.STDOUT)


async def test_koco_watch_registry_reconnects_and_shows_it(reg: Reg, tmp_path: Path) -> None:  # noqa: F811
    await reg.register("node-a", "hello")
    out = tmp_path / "watch.txt"
    watcher = _watch(reg, out)
    try:
        await _until(lambda text: "node-a" in text, "the first change", out)
        port = int(reg.address.rsplit(":", 1)[1])
        await reg.daemon.stop(grace=0)
        await _until(lambda text: text.count("reconnecting to") >= 2, "reconnecting notices", out)
        reg.daemon = await start(reg.pki, reg.folder, listen=f"127.0.0.1:{port}")
        await reg.register("node-b", "ticker")
        await _until(lambda text: "node-b" in text, "the change after the restart", out)
    finally:
        watcher.terminate()
        watcher.wait(10)
    text = out.read_text()
    assert "reconnected to the registry" in text, text
    revisions = [int(line.split()[0][1:]) for line in text.splitlines() if line.startswith("r")]
    assert revisions == list(range(1, len(revisions) + 1)), text
    assert os.environ.get("KODOSUMI_REGISTRY") is None


async def test_koco_watch_registry_gives_up_at_the_deadline_it_was_given(
    reg: Reg,  # noqa: F811
    tmp_path: Path,
) -> None:
    await reg.register("node-a", "hello")
    out = tmp_path / "watch.txt"
    watcher = _watch(reg, out, "--give-up-after", "1.5")
    try:
        await _until(lambda text: "node-a" in text, "the first change", out)
        await reg.daemon.stop(grace=0)
        assert await asyncio.to_thread(watcher.wait, 30) == 4
    finally:
        if watcher.poll() is None:
            watcher.kill()
    text = out.read_text()
    assert "reconnecting to" in text and "gave up after" in text, text
