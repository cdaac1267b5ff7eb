"""`kodosumid` as an operator runs it, with `log_format = "json"`, the console span exporter
and a metrics collector that is down:

- every line on its stderr is a JSON object (Ray's own lines and the executors' included);
- launches and ends are INFO lines naming the execution and its trace;
- the spans of the node and of its executors are on the node's stdout, one per line;
- each process that cannot export says so once;
- SIGTERM is bounded by `final_export_seconds`, not by the export timeout;
- the embedded Ray's session lives in the node's state directory and goes with the node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kodosumid.executors.ray_session import SESSION_SUFFIX_BYTES, SOCKET_PATH_MAX, session_root
from tests.observability.test_export_down import dead_endpoint

REPO = Path(__file__).resolve().parents[2]
KOCO = (sys.executable, "-m", "kodoclient")

CONFIG = """
[node]
id = "json-node"
listen = "127.0.0.1:0"
shutdown_grace_seconds = 1.0
python_path = ["{repo}"]

[pool]
shared_executors = 1
warm_executors = 0

[telemetry]
log_format = "json"
export_timeout_seconds = 30.0
final_export_seconds = 1.0
span_delay_seconds = 0.2

[[flows]]
name = "hello"
entrypoint = "tests.flowlib:hello"
"""


@pytest.fixture
def short_state() -> Iterator[Path]:
    # Short enough for Ray's socket paths below <state>/ray/session (tmp_path is not).
    path = Path(tempfile.mkdtemp(prefix="kj-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_json_logs_spans_on_stdout_bounded_stop_and_ray_session_in_state(
    short_state: Path,
) -> None:
    config = short_state / "node.toml"
    config.write_text(CONFIG.format(repo=REPO))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://{dead_endpoint()}",
        OTEL_EXPORTER_OTLP_INSECURE="true",
    )
    out, err = short_state / "stdout", short_state / "stderr"
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kodosumid",
            "--config",
            str(config),
            "--state-dir",
            str(short_state),
        ],
        cwd=REPO,
        env=env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    try:
        deadline = time.monotonic() + 90
        while not (short_state / "node.json").exists():
            assert daemon.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "kodosumid did not start"
            time.sleep(0.1)
        sessions = list((short_state / "ray" / "session").glob("session_*"))
        assert sessions, "the embedded Ray's session is not in the state directory"
        koco_env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
        run = subprocess.run(
            [*KOCO, "--state-dir", str(short_state), "--json", "run", "hello", "-i", "name=ops"],
            env=koco_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        # The run's span leaves the executor when the run ends and reaches the node's stdout
        # through Ray's log forwarding: wait for it before stopping the node.
        deadline = time.monotonic() + 60
        while '"execution hello"' not in out.read_text():
            assert time.monotonic() < deadline, "the run's span never reached the node's stdout"
            time.sleep(0.1)
    finally:
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        finally:
            if daemon.poll() is None:
                daemon.kill()
        stopped_in = time.monotonic() - started

    # Bounded by final_export_seconds (1 s), not by the 30 s export timeout and its retries.
    assert stopped_in < 15, f"SIGTERM took {stopped_in:.1f} s with the collector down"
    assert daemon.returncode == 0, err.read_text()[-2000:]

    lines = [line for line in err.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not JSON on the node's stderr: {line!r}")
    messages = [r["message"] for r in records]
    assert any(r["logger"].startswith("ray") for r in records)  # Ray's own, as JSON

    launched = [r for r in records if r["message"].startswith("launched hello as ")]
    ended = [r for r in records if " of hello ended SUCCEEDED" in r["message"]]
    assert len(launched) == 1 and len(ended) == 1, messages
    assert launched[0]["level"] == ended[0]["level"] == "INFO"
    assert launched[0]["execution_id"] == ended[0]["execution_id"]
    assert len(launched[0]["trace_id"]) == 32 and ended[0]["trace_id"] == launched[0]["trace_id"]

    # Said once per process: once by the node, at most once by each executor.
    said = [r for r in records if "cannot export" in r["message"]]
    assert len([r for r in said if "executor_pid" not in r]) == 1, said
    by_executor = [r["executor_pid"] for r in said if "executor_pid" in r]
    assert len(by_executor) == len(set(by_executor))
    assert not [r for r in records if "opentelemetry.exporter" in r["logger"]]
    assert all(r["logger"].startswith("kodosumid.executor") for r in said if "executor_pid" in r)

    # The spans: node's and executor's, one JSON object per line on the node's stdout.
    spans = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
    names = {s["name"] for s in spans}
    assert {"kodosumi.v1.FlowService/LaunchExecution", "execution hello"} <= names
    run_span = next(s for s in spans if s["name"] == "execution hello")
    assert run_span["attributes"]["kodosumi.execution_id"] == launched[0]["execution_id"]
    assert run_span["context"]["trace_id"].removeprefix("0x") == launched[0]["trace_id"]

    # The session went with the node, and Ray wrote none to the shared /tmp/ray.
    assert not (short_state / "ray" / "session").exists()
    assert (short_state / "ray" / "auth_token").exists()  # the token stays
    assert not list(Path("/tmp/ray").glob(f"session_*_{daemon.pid}"))


def test_a_state_directory_too_deep_for_ray_sockets_gets_a_short_session_folder(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * (SOCKET_PATH_MAX - SESSION_SUFFIX_BYTES))
    root, private = session_root(deep)
    try:
        assert private and not root.is_relative_to(deep)
        assert len(str(root)) + SESSION_SUFFIX_BYTES <= SOCKET_PATH_MAX
        assert root.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_only_sessions_of_gone_drivers_are_removed_at_start(short_state: Path) -> None:
    """Another node started on the same state directory must not pull the running Ray's
    session (its sockets) from under it; a killed node's is cleaned up."""
    sessions = short_state / "ray" / "session"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = sessions / f"session_2026-12-04_22-29-59_123456_{os.getpid()}"
    dead = sessions / f"session_2026-12-04_22-29-58_123456_{gone.pid}"
    for folder in (live, dead):
        (folder / "sockets").mkdir(parents=True)
    root, private = session_root(short_state)
    assert (root, private) == (sessions.resolve(), False)
    assert live.exists() and not dead.exists()
