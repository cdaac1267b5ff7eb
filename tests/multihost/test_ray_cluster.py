"""A Ray cluster across two hosts of the namespace LAN, driven by a kodosumi node, set up
with the commands of docs/operations.md ("Deploying on a LAN", step 3) only:

    h2 10.213.0.12  node-a's host: `ray start --head`, then node-a again with --ray-address
                    and a catalog flow placed by label on the worker host
    h5 10.213.0.15  a Ray worker host: `ray start --address ... --labels host=h5`, no kodosumi

The flow's code (`lanflows`, `tests/multihost/catalog/`) lives only in node-a's catalog
folder, its working directory: not in the checkout, not on the worker's Python path. The
node ships it with Ray's runtime environment. The flow reports where it ran; `koco node`
reports which Ray node hosts its executor. Ray runs with token authentication (a token
file each host and the node name by `RAY_AUTH_TOKEN_PATH`).

Every Ray process here is one this test started (`ray start --block`, each in a session of
its own): they are stopped by their pid and process group, never with `ray stop`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.multihost.deployment import (
    NODE_PORT,
    REPO,
    Deployment,
    Machine,
    events_of,
    status_of,
    wait_for,
)
from tests.multihost.netns import _stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RAY_PORT = 6379
CATALOG = REPO / "tests" / "multihost" / "catalog" / "lanflows"
PLACED = "lanflows.where.whereami"
# The doc's token step, run as written (a shell line) on the head host.
TOKEN_COMMAND = (
    "umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' > ~/ray-token"
)
EXPORT_TOKEN = "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/ray-token"
# Ray's unix sockets live under its temp dir: paths longer than ~107 bytes do not bind.
MAX_TEMP_DIR = 48
# Where the docs keep Ray's temp dir; the test uses one under its own tmp folder.
DOCS_TEMP_DIR = "/var/tmp/ray"
HEAD, WORKER = "10.213.0.12", "10.213.0.15"


def head_command(temp_dir: str) -> str:
    return (
        f"ray start --head --block --port {RAY_PORT} --node-ip-address {HEAD} --num-cpus 1 "
        "--object-store-memory 100000000 --include-dashboard false --disable-usage-stats "
        f"--temp-dir {temp_dir}"
    )


def worker_command(temp_dir: str) -> str:
    return (
        f"ray start --block --address {HEAD}:{RAY_PORT} --node-ip-address {WORKER} "
        "--num-cpus 1 --object-store-memory 100000000 --labels host=h5 --disable-usage-stats "
        f"--temp-dir {temp_dir}"
    )


NODE_COMMAND = (
    f"kodosumid --listen 0.0.0.0:{NODE_PORT} --ray-address {HEAD}:{RAY_PORT} "
    "--flow lanflows.where:whereami --flow-labels host=h5"
)


def test_the_docs_show_the_commands_this_test_runs() -> None:
    """docs/operations.md, "Deploying on a LAN", step 3: the same commands, line by line."""
    text = (REPO / "docs" / "operations.md").read_text()
    step = text[text.index("**3. A Ray cluster across hosts.**") :]
    block = step[step.index("```bash") : step.index("```", step.index("```bash") + 7)]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    for command in (
        TOKEN_COMMAND,
        EXPORT_TOKEN,
        head_command(DOCS_TEMP_DIR),
        worker_command(DOCS_TEMP_DIR),
        NODE_COMMAND,
    ):
        assert command in lines, command


def _ray_temp_dir(machine: Machine, stack: list[Path]) -> Path:
    """Ray's temp dir for this host, under the test's tmp dir when the path is short enough
    for Ray's sockets, else a short one of its own under /tmp (removed afterwards)."""
    path = machine.root / "ray"
    if len(str(path)) > MAX_TEMP_DIR:
        path = Path(tempfile.mkdtemp(prefix=f"kt-ray-{machine.host.name}-"))
        stack.append(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _use_token(machine: Machine, token: Path) -> None:
    """`export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/ray-token` on this host."""
    machine.env["RAY_AUTH_MODE"] = "token"
    machine.env["RAY_AUTH_TOKEN_PATH"] = str(token)


def _ray_started(machine: Machine, log: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, machine.log(log)
    return "Ray runtime started" in machine.log(log)


@pytest.fixture
def ray_cluster(deployment: Deployment) -> Iterator[dict[str, Any]]:
    head, worker = deployment.node_a, deployment.ray_worker
    short_dirs: list[Path] = []
    started: list[subprocess.Popen[bytes]] = []
    try:
        # The head host makes the cluster's token; every Ray host and the node get a copy.
        head.ok(f"sh -c {TOKEN_COMMAND!r}")
        token = head.root / "home" / "ray-token"
        assert token.stat().st_mode & 0o777 == 0o600
        worker_token = worker.root / "home" / "ray-token"
        shutil.copy(token, worker_token)  # scp, on real hosts
        worker_token.chmod(0o600)
        _use_token(head, token)
        _use_token(worker, worker_token)

        assert (head.address, worker.address) == (HEAD, WORKER)
        head_line = head_command(str(_ray_temp_dir(head, short_dirs)))
        began = time.monotonic()
        process = head.spawn(head_line, "ray-head.log")
        started.append(process)
        wait_for(lambda: _ray_started(head, "ray-head.log", process), "the Ray head", 120)
        worker_temp = _ray_temp_dir(worker, short_dirs)
        joined = worker.spawn(worker_command(str(worker_temp)), "ray-worker.log")
        started.append(joined)
        wait_for(lambda: _ray_started(worker, "ray-worker.log", joined), "the Ray worker", 120)
        print(f"\nRay head and worker started in {time.monotonic() - began:.1f} s")
        yield {"head": process, "worker": joined, "worker_temp": worker_temp}
    finally:
        # Only what this test started, by pid and process group, all at once.
        _stop_all(started)
        for path in short_dirs:
            shutil.rmtree(path, ignore_errors=True)
    # Stopping what it started left nothing running on the worker host.
    wait_for(lambda: not worker.host.pids(), "the worker host empty", 10)


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each `ray start --block` (it stops the Ray processes it started), then
    SIGKILL each one's process group: what is left of it, and nothing else."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _restart_node_a(deployment: Deployment, command: str) -> None:
    node_a = deployment.node_a
    old = deployment.processes["node-a"]
    old.terminate()
    old.wait(60)
    catalog = node_a.root / "catalog"
    shutil.copytree(CATALOG, catalog / "lanflows", dirs_exist_ok=True)
    process = node_a.spawn(command, "kodosumid-ray.log", cwd=catalog)
    deployment.processes["node-a"] = process
    info = node_a.state / "node.json"
    wait_for(lambda: info.exists() or process.poll() is not None, "node-a on the cluster", 180)
    assert process.poll() is None, node_a.log("kodosumid-ray.log")


def _result(events: list[dict[str, Any]]) -> dict[str, Any]:
    found = [e["result"] for e in events if "result" in e]
    assert found, events[-3:]
    return found[-1]


def test_a_flow_placed_by_label_runs_on_the_worker_host_with_its_code_shipped(
    deployment: Deployment, ray_cluster: dict[str, Any]
) -> None:
    try:
        _placed_run(deployment, ray_cluster)
    finally:
        # node-a first (it kills its executors on the cluster), then the fixture stops Ray.
        _stop(deployment.processes["node-a"].pid, deployment.processes["node-a"])


def _placed_run(deployment: Deployment, ray_cluster: dict[str, Any]) -> None:
    head, worker, laptop = deployment.node_a, deployment.ray_worker, deployment.laptop
    # The flow's package is nowhere on the worker's Python path.
    missing = worker.run("python -c 'import lanflows'")
    assert missing.returncode != 0 and "No module named 'lanflows'" in missing.stderr

    began = time.monotonic()
    _restart_node_a(deployment, NODE_COMMAND)
    restarted = time.monotonic()
    process, out = laptop.spawn_output(
        f"koco --json run {PLACED} -i toward={deployment.registry.address}", "ray-run"
    )
    assert process.wait(300) == 0, laptop.log("ray-run") + head.log("kodosumid-ray.log")
    events = events_of(out)
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    statuses = [status_of(e) for e in events if status_of(e)]
    assert statuses[0] == "PENDING" and statuses[-1] == "SUCCEEDED", statuses
    # It ran on the worker host, printing as it went, with the code Ray unpacked there.
    lines = [e["output_line"]["text"] for e in events if "output_line" in e]
    assert lines == [f"running on {worker.address}"], lines
    ran = _result(events)["json"]
    assert ran["address"] == worker.address, ran
    assert Path(ran["code"]).is_relative_to(ray_cluster["worker_temp"]), ran
    assert "runtime_resources" in ran["code"] and "py_modules" in ran["code"], ran
    print(
        f"node-a on the cluster after {restarted - began:.1f} s, the placed run took "
        f"{time.monotonic() - restarted:.1f} s: {ran}"
    )

    # `koco node`: the executor of the placed flow, with its label, on the worker host.
    (info,) = laptop.json_lines("koco --json node")
    placed = [e for e in info["executors"] if e.get("labels") == {"host": "h5"}]
    assert placed and placed[0]["ray_node_address"] == worker.address, info["executors"]
    assert placed[0]["ray_node_id"] == ran["ray_node_id"]  # the node the flow saw itself on

    # A flow with no placement runs on the cluster as well (anywhere).
    hello = laptop.json_lines("koco --json run hello -i name=cluster")
    assert [status_of(e) for e in hello if status_of(e)][-1] == "SUCCEEDED"
