"""`koco timeline`: the Gantt chart of a finished run, from its stored events — nesting,
durations and token counts — in the terminal, as SVG and as JSON."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from rich.console import Console

from kodoclient.cli import main
from kodoclient.cli.gantt_svg import render_svg
from kodoclient.cli.timeline import gantt_view, layout
from kodoclient.timeline import build_timeline
from kodosumi.v1 import event_pb2
from kodosumid.catalog import example_flows
from kodosumid.config import PoolConfig
from tests.node.conftest import RunningNode
from tests.node.helpers import collect, launch
from tests.observability.conftest import Telemetry

S = event_pb2
MS = 1_000_000


def event(seq: int, at_ms: int, **kind: Any) -> event_pb2.Event:
    e = event_pb2.Event(execution_id="run1", seq=seq, time_unix_nano=at_ms * MS)
    for name, fields in kind.items():
        getattr(e, name).CopyFrom(fields)
    return e


def status(value: int) -> event_pb2.StatusChanged:
    return event_pb2.StatusChanged(status=value)  # type: ignore[arg-type]


def crew_events() -> list[event_pb2.Event]:
    usage = event_pb2.TokenUsage(prompt_tokens=120, completion_tokens=30, total_tokens=150)
    task, agent, llm, tool = (
        event_pb2.TaskStep,
        event_pb2.AgentStep,
        event_pb2.LlmCall,
        event_pb2.ToolCall,
    )
    under_agent = {"parent_step_id": "a"}
    return [
        event(1, 0, status_changed=status(S.EXECUTION_STATUS_PENDING)),
        event(2, 10, status_changed=status(S.EXECUTION_STATUS_RUNNING)),
        event(3, 20, task_step=task(step_id="t", phase=1, task_name="Research")),
        event(
            4,
            30,
            agent_step=agent(step_id="a", phase=1, agent_role="Researcher", parent_step_id="t"),
        ),
        event(5, 40, llm_call=llm(step_id="l", phase=1, model="offline", **under_agent)),
        event(
            6, 240, llm_call=llm(step_id="l", phase=2, model="offline", usage=usage, **under_agent)
        ),
        event(7, 250, tool_call=tool(step_id="x", phase=1, tool_name="search", **under_agent)),
        event(8, 300, tool_call=tool(step_id="x", phase=3, tool_name="search", error="down")),
        event(9, 400, agent_step=agent(step_id="a", phase=2, agent_role="Researcher")),
        event(10, 410, task_step=task(step_id="t", phase=2, task_name="Research")),
        event(11, 420, task_step=task(step_id="t2", phase=1, task_name="Write")),
        event(12, 1010, status_changed=status(S.EXECUTION_STATUS_SUCCEEDED)),
    ]


def test_steps_nest_pair_up_and_carry_their_tokens() -> None:
    timeline = build_timeline(crew_events(), flow="search")
    rows = [(b.depth, b.kind, b.label, b.state) for b in timeline.bars]
    assert rows == [
        (0, "execution", "search", "ok"),
        (1, "task", "Research", "ok"),
        (2, "agent", "Researcher", "ok"),
        (3, "llm", "offline", "ok"),
        (3, "tool", "search", "failed"),
        (1, "task", "Write", "unfinished"),  # its end never came: drawn to the run's end
    ]
    llm = timeline.bars[3]
    assert llm.duration_ns == 200 * MS and (llm.prompt_tokens, llm.completion_tokens) == (120, 30)
    assert timeline.duration_ns == 1000 * MS  # RUNNING to the terminal status
    assert (timeline.prompt_tokens, timeline.completion_tokens) == (120, 30)


def test_the_chart_draws_in_the_terminal_and_as_svg() -> None:
    timeline = build_timeline(crew_events(), execution_id="run1", flow="search")
    console = Console(width=140, record=True, color_system=None)
    console.print(gantt_view(timeline, 60))
    text = console.export_text()
    assert "agent Researcher" in text and "120+30" in text and "200 ms" in text
    assert "(failed)" in text and "(unfinished)" in text
    svg = ET.fromstring(render_svg(timeline))
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) >= 1 + len(timeline.bars)  # the background and one bar per step


def test_at_80_columns_took_and_tokens_are_whole_and_counts_are_plural_right() -> None:
    timeline = build_timeline(crew_events(), execution_id="e" * 32, flow="search")
    console = Console(width=80, record=True, color_system=None)
    label_width, bar_width = layout(timeline, 80)
    console.print(gantt_view(timeline, bar_width, label_width))
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    header = next(line for line in lines if line.startswith("STEP"))
    assert header.rstrip().endswith("TOOK  TOKENS")
    text = "\n".join(lines)
    assert "590 ms (unfinished)" in text and "50 ms (failed)" in text and "120+30" in text
    assert "2 tasks, 1 agent run, 1 LLM call, 1 tool call" in "".join(lines)


def test_the_svg_has_a_legend_and_json_parents_are_bars() -> None:
    timeline = build_timeline(crew_events(), execution_id="run1", flow="search")
    svg = ET.fromstring(render_svg(timeline))
    legend = svg.find("{http://www.w3.org/2000/svg}g[@class='legend']")
    assert legend is not None
    words = set(legend.itertext())
    assert {"task", "agent", "llm", "tool", "input", "failed", "unfinished"} <= words
    records = [bar.record(timeline.start_ns) for bar in timeline.bars]
    ids = {r["step_id"] for r in records}
    assert records[0]["parent_id"] == ""
    assert all(r["parent_id"] in ids for r in records[1:])


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_the_timeline_of_a_finished_crew_run(
    telemetry: Telemetry, nodes: Any, tmp_path: Path
) -> None:
    node = await nodes(
        node_id="timeline-node",
        flows=example_flows(),
        pool=PoolConfig(
            shared_executors=1, warm_executors=0, preload_modules=PoolConfig().preload_modules
        ),
    )
    execution_id = await launch(node.flows, "search", {"topic": "gantt"})
    events = await collect(node.flows, execution_id)
    assert events[-1].status_changed.status == S.EXECUTION_STATUS_SUCCEEDED

    picture = tmp_path / "run.svg"
    shown = await koco(node, "timeline", execution_id, "--svg", str(picture))
    assert shown.exit_code == 0, shown.output
    for expected in ("search", "SUCCEEDED", "task ", "agent ", "llm ", "tool ", "TOKENS"):
        assert expected in shown.output
    # Not a terminal: 80 columns, and nothing of TOOK and TOKENS is cut.
    assert all(len(line) <= 80 for line in shown.output.splitlines())
    assert any(line.rstrip().endswith("TOOK  TOKENS") for line in shown.output.splitlines())
    root = ET.parse(picture).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert execution_id in "".join(root.itertext())

    as_json = await koco(node, "--json", "timeline", execution_id)
    bars = [json.loads(line) for line in as_json.output.splitlines()]
    assert bars[0]["kind"] == "execution" and bars[0]["state"] == "ok"
    kinds = {b["kind"] for b in bars}
    assert {"task", "agent", "llm", "tool"} <= kinds
    llm = next(b for b in bars if b["kind"] == "llm")
    assert llm["prompt_tokens"] > 0 and llm["duration_s"] >= 0
    assert all(b["depth"] >= 1 for b in bars[1:])
    assert all(b["parent_id"] in {a["step_id"] for a in bars} for b in bars[1:])
