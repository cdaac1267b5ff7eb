"""The example catalog: well-formed entries, and every example runs offline to success."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from engine.adapters import adapter_for
from engine.loader import load
from flows.catalog import EXAMPLES
from kodosumi.v1 import event_pb2
from tests.engine_crew.helpers import REPO, Driver

KEYS = {"name", "entrypoint", "description", "tags", "version", "input_schema", "timeout_seconds"}


def defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: p["default"] for k, p in schema["properties"].items() if "default" in p}


def test_catalog_entries_are_complete_and_loadable() -> None:
    assert len({e["name"] for e in EXAMPLES}) == len(EXAMPLES)
    for entry in EXAMPLES:
        assert set(entry) == KEYS, entry["name"]
        assert entry["version"] == "1" and entry["description"] and entry["tags"]
        assert entry["timeout_seconds"] > 0
        jsonschema.Draft202012Validator.check_schema(entry["input_schema"])
        jsonschema.validate(defaults(entry["input_schema"]), entry["input_schema"])
        adapter_for(load(entry["entrypoint"]))  # resolves and is runnable
    kinds = {tag for e in EXAMPLES for tag in e["tags"]}
    assert {"python", "crewai", "flow", "yaml", "human-input"} <= kinds


def test_catalog_import_is_light() -> None:
    probe = (
        "import sys, flows.catalog; print('crewai' in sys.modules, 'flows.basic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("entry", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
async def test_every_example_runs_offline(driver: Driver, entry: dict[str, Any]) -> None:
    def answer(request: event_pb2.InputRequested) -> Any:
        # Forms get an approval, text requests an empty reply (accept / default outcome).
        return {"approved": True} if request.kind == event_pb2.INPUT_KIND_FORM else ""

    run = await driver.run(
        entry["entrypoint"], defaults(entry["input_schema"]), answer=answer, timeout=60
    )
    errors = [e.message for e in run.of("error")]
    assert run.status == event_pb2.EXECUTION_STATUS_SUCCEEDED, errors
    assert run.kinds[-2] == "result"


async def test_hello_prints_logs_and_reports_progress(driver: Driver) -> None:
    run = await driver.run("flows.basic:hello", {"name": "Ada"})
    assert [p.fraction for p in run.of("progress")] == [0.0, 1.0]
    assert "Hello, Ada!" in run.output_text()
    assert any(r.message == "greeted Ada" for r in run.of("log_record"))
    assert run.result.text == "Hello, Ada!"


async def test_async_and_generator_examples(driver: Driver) -> None:
    greeting = await driver.run("flows.basic:hello_async", {"name": "Bo", "delay": 0})
    assert greeting.result.markdown.startswith("# Hello, Bo!")
    countdown = await driver.run("flows.basic:countdown", {"steps": 4, "pause": 0})
    assert [round(p.fraction, 2) for p in countdown.of("progress")] == [0.25, 0.5, 0.75, 1.0]
    assert countdown.result_json() == {"counted": 4}


async def test_approval_form_round_trip(driver: Driver) -> None:
    def answer(request: event_pb2.InputRequested) -> Any:
        assert request.kind == event_pb2.INPUT_KIND_FORM
        assert "Approve the purchase of a desk" in request.prompt
        return {"approved": False, "comment": "too expensive"}

    run = await driver.run("flows.basic:approval", {"item": "a desk", "amount": 900}, answer=answer)
    assert run.result_json() == {
        "item": "a desk",
        "amount": 900,
        "decision": "rejected",
        "comment": "too expensive",
    }
    assert "The purchase was rejected" in run.output_text()
