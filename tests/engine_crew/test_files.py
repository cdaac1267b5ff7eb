"""Files in flows run by the engine (no node: a local folder bridge): `ctx.files` and
`ctx.save_file` in plain flows, and CrewAI tools and tasks reading and writing files."""

from __future__ import annotations

from dataclasses import asdict

from engine.local_files import LocalFileBridge
from kodosumi.v1 import event_pb2
from tests.engine_crew.helpers import Driver


def _bridge(driver: Driver) -> LocalFileBridge:
    bridge = driver.host.files
    assert isinstance(bridge, LocalFileBridge)
    return bridge


async def test_the_example_reads_a_file_and_writes_one(driver: Driver) -> None:
    bridge = _bridge(driver)
    ref = bridge.add("document", b"alpha beta\ngamma\n", "text/plain")
    run = await driver.run(
        "flows.documents:summarize_file", {"lines": 1}, files=[asdict(ref)], timeout=60
    )
    assert run.status == event_pb2.EXECUTION_STATUS_SUCCEEDED, [e.message for e in run.of("error")]
    (artifact,) = run.of("artifact")
    assert (artifact.name, artifact.media_type, artifact.data) == (
        "summary.md",
        "text/markdown",
        b"",
    )
    assert artifact.file_id and artifact.sha256 and artifact.total_size > 0
    text = (bridge.root / artifact.sha256).read_text()
    assert "words: 3" in text and "> alpha beta" in text and "gamma" not in text


async def test_crewai_tools_read_inputs_and_outputs_become_files(driver: Driver) -> None:
    bridge = _bridge(driver)
    ref = bridge.add("notes", b"the notes of the meeting", "text/plain")
    run = await driver.run(
        "tests.engine_crew.kodo_crew_cases:file_crew", {}, files=[asdict(ref)], timeout=60
    )
    assert run.status == event_pb2.EXECUTION_STATUS_SUCCEEDED, [e.message for e in run.of("error")]
    calls = run.of("tool_call")
    read = [c for c in calls if c.tool_name == "read_input_file" and c.result]
    assert read and "the notes of the meeting" in read[0].result
    files = {a.name: a for a in run.of("artifact") if a.file_id}
    assert set(files) == {"digest.txt", "report.md"}
    assert (bridge.root / files["digest.txt"].sha256).read_bytes() == b"DIGEST"
    assert "digested" in (bridge.root / files["report.md"].sha256).read_text()
