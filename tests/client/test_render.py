"""The event renderer: every `kind` of event.proto has a line, and the live state folds right."""

from __future__ import annotations

import datetime as dt

import pytest
from rich.console import Console
from rich.json import JSON
from rich.markdown import Markdown
from rich.text import Text

from kodoclient.cli.render import (
    RENDERERS,
    event_line,
    record,
    result_view,
    status_view,
    summary_line,
)
from kodoclient.follow_state import FollowState, fold
from kodosumi.jsonvalue import dict_to_struct, python_to_value
from kodosumi.v1 import event_pb2 as pb
from kodosumi.v1 import market_pb2 as mpb

KINDS = [f.name for f in pb.Event.DESCRIPTOR.oneofs_by_name["kind"].fields]
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC


def ev(seq: int = 1, **kind: object) -> pb.Event:
    return pb.Event(execution_id="e1", seq=seq, time_unix_nano=T0 + seq * 10**9, **kind)  # type: ignore[arg-type]


# One event of every kind, and text its line must show.
SAMPLES: dict[str, tuple[pb.Event, str]] = {
    "status_changed": (
        ev(status_changed=pb.StatusChanged(status=pb.EXECUTION_STATUS_FAILED, reason="boom")),
        "● FAILED — boom",
    ),
    "inputs_received": (
        ev(inputs_received=pb.InputsReceived(inputs=dict_to_struct({"q": "cats"}))),
        'inputs {"q": "cats"}',
    ),
    "output_line": (
        ev(output_line=pb.OutputLine(stream=pb.OUTPUT_STREAM_STDOUT, text="hello")),
        "│ hello",
    ),
    "log_record": (
        ev(log_record=pb.LogRecord(level=pb.LOG_LEVEL_WARNING, logger="crew", message="slow")),
        "WARN  crew: slow",
    ),
    "agent_step": (
        ev(
            agent_step=pb.AgentStep(
                step_id="a", phase=pb.STEP_PHASE_STARTED, agent_role="Researcher", task_name="find"
            )
        ),
        "▶ agent Researcher on find",
    ),
    "task_step": (
        ev(
            task_step=pb.TaskStep(
                step_id="t",
                phase=pb.STEP_PHASE_COMPLETED,
                task_name="find",
                output="3 cats",
                duration_ms=1500,
            )
        ),
        "✔ task find (1.5 s): 3 cats",
    ),
    "llm_call": (
        ev(
            llm_call=pb.LlmCall(
                step_id="l",
                phase=pb.STEP_PHASE_COMPLETED,
                model="gpt-x",
                usage=pb.TokenUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15),
                latency_ms=830,
            )
        ),
        "✔ llm gpt-x 10+5 tokens, 830 ms",
    ),
    "tool_call": (
        ev(
            tool_call=pb.ToolCall(
                step_id="x",
                phase=pb.STEP_PHASE_FAILED,
                tool_name="search",
                error="timeout",
                latency_ms=20,
            )
        ),
        "✖ tool search (20 ms): timeout",
    ),
    "input_requested": (
        ev(
            input_requested=pb.InputRequested(
                request_id="r1", kind=pb.INPUT_KIND_APPROVAL, prompt="Ship it?", timeout_seconds=30
            )
        ),
        "? approval requested [r1]: Ship it? (timeout 30 s)",
    ),
    "input_provided": (
        ev(
            input_provided=pb.InputProvided(
                request_id="r1", value=python_to_value(True), provided_by="ada"
            )
        ),
        "✔ input [r1] = true by ada",
    ),
    "result": (
        ev(result=pb.Result(markdown="# Done", json=python_to_value({"n": 1}), has_json=True)),
        "■ result (markdown, json)",
    ),
    "artifact": (
        ev(
            artifact=pb.Artifact(
                artifact_id="a1",
                name="report.pdf",
                media_type="application/pdf",
                data=b"xyz",
                last_chunk=True,
            )
        ),
        "▣ artifact report.pdf (application/pdf, 3 bytes)",
    ),
    "error": (
        ev(error=pb.Error(type="ValueError", message="bad input", traceback="Traceback...")),
        "✖ ValueError: bad input",
    ),
    "metric": (
        ev(metric=pb.Metric(name="cost", value=0.25, unit="USD", attributes={"model": "x"})),
        "metric cost = 0.25 USD {model=x}",
    ),
    "alert": (
        ev(alert=pb.Alert(rule="budget", severity=pb.ALERT_SEVERITY_CRITICAL, message="over")),
        "⚠ alert budget: over",
    ),
    "progress": (
        ev(progress=pb.Progress(fraction=0.42, message="crawling")),
        "progress 42% crawling",
    ),
    "framework_event": (
        ev(framework_event=pb.FrameworkEvent(framework="crewai", type="CrewKickoffStarted")),
        "crewai CrewKickoffStarted",
    ),
    "child_execution": (
        ev(
            child_execution=pb.ChildExecution(
                relation=pb.CHILD_RELATION_CHILD, node_id="n2", execution_id="e9", flow="sub"
            )
        ),
        "↳ child execution e9 (sub) on n2",
    ),
    "usage": (
        ev(
            usage=mpb.Usage(
                attempt=1,
                wall_seconds=2.34,
                cpu_seconds=0.41,
                llm_calls=6,
                models=[mpb.ModelUsage(model="m", calls=6, input_tokens=812, output_tokens=240)],
                tool_calls=2,
                input_bytes=16,
                output_bytes=1337,
            )
        ),
        "usage (attempt 1) 2.3 s, cpu 0.4 s, m 6 calls 812/240 tok, 2 tool calls, "
        "in 16 B, out 1337 B",
    ),
}


def test_renderer_table_covers_exactly_the_event_kinds() -> None:
    assert set(RENDERERS) == set(KINDS)
    assert set(SAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_a_line(kind: str) -> None:
    event, expected = SAMPLES[kind]
    assert event.WhichOneof("kind") == kind
    line = event_line(event, tz=dt.UTC)
    assert line is not None
    assert line.plain == f"22:13:{21:02d} {expected}"


def test_lines_carry_styles() -> None:
    failed = event_line(SAMPLES["status_changed"][0])
    assert failed is not None
    assert any("red" in str(span.style) for span in failed.spans)


def test_streaming_chunks_only_when_verbose() -> None:
    chunk = ev(
        llm_call=pb.LlmCall(step_id="l", phase=pb.STEP_PHASE_STREAMING, model="m", chunk="Hel")
    )
    assert event_line(chunk) is None
    line = event_line(chunk, verbose=True)
    assert line is not None and line.plain.endswith("… llm m Hel")


def test_middle_artifact_chunks_are_quiet() -> None:
    middle = ev(artifact=pb.Artifact(artifact_id="a", name="big", chunk_index=3))
    assert event_line(middle) is None


def test_tracebacks_only_when_verbose() -> None:
    event = SAMPLES["error"][0]
    assert "Traceback" not in event_line(event).plain  # type: ignore[union-attr]
    assert "Traceback" in event_line(event, verbose=True).plain  # type: ignore[union-attr]


def test_unknown_kind_does_not_crash() -> None:
    line = event_line(pb.Event(seq=7))
    assert line is not None and "does not know" in line.plain


def test_stderr_and_long_output_are_clipped_to_one_line() -> None:
    event = ev(
        task_step=pb.TaskStep(phase=pb.STEP_PHASE_COMPLETED, task_name="t", output="word " * 200)
    )
    line = event_line(event)
    assert line is not None and "\n" not in line.plain and line.plain.endswith("…")
    err = event_line(ev(output_line=pb.OutputLine(stream=pb.OUTPUT_STREAM_STDERR, text="oops")))
    assert err is not None and err.plain.endswith("stderr│ oops")


def status(seq: int, value: int) -> pb.Event:
    return ev(seq, status_changed=pb.StatusChanged(status=value))


def test_fold_tracks_status_progress_steps_inputs_and_usage() -> None:
    events = [
        status(1, pb.EXECUTION_STATUS_RUNNING),
        ev(2, agent_step=pb.AgentStep(step_id="a", phase=pb.STEP_PHASE_STARTED, agent_role="R")),
        ev(3, llm_call=pb.LlmCall(step_id="l", phase=pb.STEP_PHASE_STARTED, model="m")),
        ev(
            4,
            llm_call=pb.LlmCall(
                step_id="l",
                phase=pb.STEP_PHASE_COMPLETED,
                model="m",
                usage=pb.TokenUsage(prompt_tokens=7, completion_tokens=3),
            ),
        ),
        ev(5, progress=pb.Progress(fraction=0.5, message="half")),
        ev(6, progress=pb.Progress(message="still half")),
        ev(7, input_requested=pb.InputRequested(request_id="r1", prompt="ok?")),
    ]
    state = fold(events, FollowState(flow="demo"))
    assert state.status == pb.EXECUTION_STATUS_RUNNING
    assert state.active == {"a": "agent R"}
    assert (state.llm_calls, state.prompt_tokens, state.completion_tokens) == (1, 7, 3)
    assert (state.progress, state.progress_message) == (0.5, "still half")
    assert list(state.open_inputs) == ["r1"]
    assert state.last_seq == 7 and state.elapsed_seconds == 6

    view = render(status_view(state))
    assert "demo e1  RUNNING" in view
    assert "50%" in view and "agent R" in view and "awaiting input: ok?" in view

    fold(
        [
            ev(8, input_provided=pb.InputProvided(request_id="r1")),
            ev(9, result=pb.Result(text="fine")),
            status(10, pb.EXECUTION_STATUS_SUCCEEDED),
        ],
        state,
    )
    assert state.terminal and not state.active and not state.open_inputs
    assert state.result is not None and state.result.text == "fine"
    assert summary_line(state).plain == "✔ SUCCEEDED e1  9.0 s · 1 LLM call, 10 tokens"


def test_terminal_failure_summary_and_errors() -> None:
    state = fold(
        [
            status(1, pb.EXECUTION_STATUS_RUNNING),
            ev(2, error=pb.Error(type="KeyError", message="x")),
            ev(
                3,
                status_changed=pb.StatusChanged(
                    status=pb.EXECUTION_STATUS_TIMED_OUT, reason="60 s"
                ),
            ),
        ]
    )
    assert [e.type for e in state.errors] == ["KeyError"]
    assert summary_line(state).plain == "✖ TIMED_OUT e1 — 60 s  2.0 s"


@pytest.mark.parametrize(
    ("result", "expected_type", "text"),
    [
        (pb.Result(markdown="# Title", text="plain"), Markdown, "Title"),
        (pb.Result(json=python_to_value({"a": [1, 2]}), has_json=True, text="t"), JSON, '"a"'),
        (pb.Result(text="just text"), Text, "just text"),
    ],
)
def test_result_prefers_markdown_then_json_then_text(
    result: pb.Result, expected_type: type, text: str
) -> None:
    view = result_view(result)
    assert isinstance(view, expected_type)
    assert text in render(view)


def test_result_falls_back_to_task_outputs() -> None:
    result = pb.Result(task_outputs=[pb.TaskOutput(task_name="find", agent_role="R", raw="3")])
    assert "find (R)" in render(result_view(result))
    assert result_view(pb.Result()) is None


def test_record_is_the_proto3_json_mapping() -> None:
    data = record(SAMPLES["status_changed"][0])
    assert data["execution_id"] == "e1"
    assert data["status_changed"] == {"status": "EXECUTION_STATUS_FAILED", "reason": "boom"}
    assert data["seq"] == "1"  # 64-bit integers are strings in proto3 JSON


def render(renderable: object) -> str:
    console = Console(width=100, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_header_before_any_event() -> None:
    assert "e7  waiting for events…" in render(status_view(FollowState(execution_id="e7")))
