"""Files for CrewAI crews: tools that read the launch's input files and save output files,
and task `output_file`s that become files of the execution.

    from engine.crew.files import read_input_file, save_output_file
    Agent(..., tools=[read_input_file, save_output_file])

Both tools act on the execution that runs the crew (found through the engine's per-run
context, which follows the kickoff into the tools). After a crew's kickoff, every task with
an `output_file` that CrewAI wrote is stored as an output file of the execution
(`store_task_outputs`, called by the adapter).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from crewai.tools import tool

from engine import capture
from engine.context import FlowContext
from engine.files import FilesUnavailable

log = logging.getLogger(__name__)

# What the tool reads of a file at most (an LLM's context is finite).
MAX_READ_CHARS = 100_000


def _context() -> FlowContext:
    run = capture.current_run()
    if run is None:
        raise RuntimeError("this tool runs only inside a kodosumi execution")
    return run.ctx


@tool("read_input_file")
def read_input_file(name: str) -> str:
    """Read an input file of this run by the name the launch gave it; returns its text."""
    ctx = _context()
    if name not in ctx.files:
        known = ", ".join(sorted(ctx.files)) or "none"
        return f"No input file named {name!r}. Input files: {known}."
    text = ctx.files[name].read_text(errors="replace")
    if len(text) > MAX_READ_CHARS:
        return text[:MAX_READ_CHARS] + f"\n[... {len(text) - MAX_READ_CHARS} more characters]"
    return text


@tool("save_output_file")
def save_output_file(name: str, content: str) -> str:
    """Save text as an output file of this run (the client downloads it by name)."""
    saved = _context().save_file(name, content)
    return f"Saved {saved.name} ({saved.size} bytes) as file {saved.file_id}."


def store_task_outputs(ctx: FlowContext, tasks: list[Any]) -> None:
    """Store the `output_file` CrewAI wrote for each task as an output file of the run."""
    for task in tasks:
        target = getattr(task, "output_file", None)
        if not target:
            continue
        path = Path(target)
        if not path.is_file():
            continue
        try:
            ctx.save_file(path.name, path)
        except FilesUnavailable:
            log.info("task output %s stays a local file: no node to store it on", path)
            return
