"""Run a CrewAI entrypoint for one execution and turn its output into the Result.

Entrypoints (what `engine.loader.load` resolved):

- a YAML crew spec (`YamlSpecFile`): validated, built, kicked off with its input defaults;
- a `Crew` object: copied first (`Crew.copy()`), so that concurrent executions of the same
  entrypoint never share agents, tasks or their outputs;
- a `@CrewBase` class: instantiated per execution, its `crew()` method builds the crew;
- a factory marked with `engine.crew.crew_factory`: called per execution;
- a CrewAI `Flow` subclass: instantiated per execution (a Flow object is run as is).

The kickoff runs in the calling thread (the execution's thread) inside `observe(ctx)`, so
every CrewAI event streams as a kodosumi event before the Result.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from crewai import Crew
from crewai.crews.crew_output import CrewOutput
from crewai.flow.flow import Flow
from crewai.types.streaming import StreamingOutputBase, StreamSession

from engine.adapters import _call_arguments
from engine.context import FlowContext
from engine.crew.build import build_crew
from engine.crew.files import store_task_outputs
from engine.crew.listener import observe, register_targets
from engine.crew.mapping import clip, fill_usage, task_title, usage_numbers
from engine.crew.session import CrewSession
from engine.crew.spec import load_spec
from engine.loader import YamlSpecFile
from kodosumi.jsonvalue import python_to_value
from kodosumi.v1 import event_pb2


def prepare(target: Any, ctx: FlowContext) -> tuple[Crew | Flow[Any], dict[str, Any]]:
    """The crew or flow to kick off for this execution, and its kickoff inputs."""
    inputs = dict(ctx.inputs)
    if isinstance(target, YamlSpecFile):
        spec = load_spec(target.path)
        return build_crew(spec), spec.kickoff_inputs(inputs)
    built = False  # made for this execution (by a factory), so not shared with others
    for _ in range(5):  # a factory may return a @CrewBase class, a Flow class, ...
        if isinstance(target, Crew):
            return (target if built else target.copy()), inputs
        if isinstance(target, Flow):
            return target, inputs
        if inspect.isclass(target) and issubclass(target, Flow):
            return target(), inputs
        if inspect.isclass(target) and getattr(target, "is_crew_class", False):
            target = target()
        elif getattr(target, "is_crew_class", False) or hasattr(target, "__crew_metadata__"):
            build = getattr(target, "crew", None)
            if not callable(build):
                raise TypeError(f"{type(target).__name__} has no crew() method marked @crew")
            crew = build()
            if not isinstance(crew, Crew):
                raise TypeError(f"{type(target).__name__}.crew() returned {type(crew).__name__}")
            return crew, inputs
        elif callable(target) and getattr(target, "__crewai__", False):
            args, kwargs = _call_arguments(target, ctx)
            target = target(*args, **kwargs)
            built = True
        else:
            break
    raise TypeError(
        f"cannot run {type(target).__name__!r} as a CrewAI entrypoint: expected a Crew, a "
        "@CrewBase class, a CrewAI Flow (class), a YAML spec or an @crew_factory function"
    )


def run_crewai(target: Any, ctx: FlowContext) -> event_pb2.Result:
    """Run the crew or flow to completion in this thread; its steps stream as events."""
    with observe(ctx) as session:
        # Built inside: what CrewAI emits while building (flow_created) is streamed too.
        runnable, inputs = prepare(target, ctx)
        register_targets(session, runnable)
        if isinstance(runnable, Flow):
            output = runnable.kickoff(inputs=inputs or None)
        else:
            output = runnable.kickoff(inputs=inputs)
        output = _finish_stream(output)
    if isinstance(runnable, Flow):
        return flow_result(runnable, output, session)
    if not isinstance(output, CrewOutput):
        raise TypeError(f"the crew returned {type(output).__name__}, not a CrewOutput")
    store_task_outputs(ctx, list(runnable.tasks))  # `output_file`s become files
    return crew_result(output, session)


def _finish_stream(output: Any) -> Any:
    """A streaming crew or flow (`stream=True`) returns a stream: drain it for the result.

    Its events reach the session like any others; the chunks themselves are not needed.
    """
    if isinstance(output, StreamingOutputBase | StreamSession):
        for _ in output:
            pass
        return output.result
    return output


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        value = dump(mode="json")
    return json.loads(json.dumps(value, default=str))


def _structured(output: Any) -> Any:
    """The JSON of a CrewAI output: its json_dict or pydantic model, else None."""
    json_dict = getattr(output, "json_dict", None)
    if json_dict:
        return _jsonable(json_dict)
    model = getattr(output, "pydantic", None)
    if model is not None:
        return _jsonable(model)
    return None


def crew_result(output: CrewOutput, session: CrewSession | None = None) -> event_pb2.Result:
    result = event_pb2.Result()
    # CrewAI final answers are markdown by convention: offer the text both ways.
    result.text = output.raw
    result.markdown = output.raw
    structured = _structured(output)
    if structured is not None:
        python_to_value(structured, result.json)
        result.has_json = True
    for task_output in output.tasks_output:
        item = result.task_outputs.add()
        item.task_name = task_output.name or task_title(None, task_output.description)
        item.agent_role = str(task_output.agent or "")
        item.raw = clip(task_output.raw)
        task_json = _structured(task_output)
        if task_json is not None:
            python_to_value(task_json, item.json)
    # The usage reported by this execution's LLM call events is exact. CrewAI's own total
    # sums each agent's LLM's lifetime counters, which counts an LLM shared by several
    # agents (or used by an earlier kickoff) more than once; it is the fallback for
    # providers that report usage only to those counters.
    numbers = dict(session.mapper.llm_usage) if session is not None else {}
    if not numbers.get("total_tokens"):
        numbers = usage_numbers(output.token_usage)
    fill_usage(result.usage, numbers)
    return result


def flow_result(flow: Flow[Any], output: Any, session: CrewSession) -> event_pb2.Result:
    """A flow's Result: its final output, and `{"result": ..., "state": ...}` as JSON."""
    if type(output).__name__ == "HumanFeedbackPending":
        raise RuntimeError(
            "the flow paused for asynchronous human feedback (a custom HumanFeedbackProvider "
            "raised HumanFeedbackPending); kodosumi asks for input through ctx instead, so "
            "leave the provider unset"
        )
    if isinstance(output, CrewOutput):
        result = crew_result(output, session)
    else:
        result = event_pb2.Result()
        if isinstance(output, str):
            result.text = output
            result.markdown = output
        elif output is not None:
            result.text = json.dumps(_jsonable(output), ensure_ascii=False)
    try:
        state = _jsonable(flow.state)
    except (TypeError, ValueError):
        state = str(flow.state)
    python_to_value({"result": _jsonable(output), "state": state}, result.json)
    result.has_json = True
    fill_usage(result.usage, session.mapper.llm_usage)
    return result
