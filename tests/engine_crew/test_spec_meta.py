"""The node lists YAML crew specs without the engine (`kodosumi.crew_spec_meta`); what it
reads must be what the engine's full parser (`engine.crew.spec`) makes of the same file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.crew.spec import load_spec
from kodosumi.crew_spec_meta import SpecMetadataError, catalog_entry
from tests.engine_crew.test_spec import VALID

REPO = Path(__file__).resolve().parents[2]

SHAPES = """\
name: shapes
version: 2
tags: [a, b]
timeout_seconds: 12.5
inputs:
  topic: string
  mood: {type: string, enum: [calm, loud], title: Mood}
  depth: {type: integer, required: false}
  strict: {type: boolean, default: true, required: true}
agents:
  a: {role: R, goal: "{topic} {mood}", backstory: B}
tasks:
  t: {description: "Do {topic}.", expected_output: X, agent: a}
"""


@pytest.mark.parametrize(
    "text", [VALID, SHAPES, (REPO / "assets" / "search.yaml").read_text()], ids=range(3)
)
def test_the_catalog_reads_a_spec_as_the_engine_does(tmp_path: Path, text: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    spec = load_spec(path)
    entry = catalog_entry(path)
    assert entry["input_schema"] == spec.input_schema()
    assert entry["name"] == spec.name
    assert entry["description"] == spec.description
    assert entry["tags"] == list(spec.tags)
    assert entry["version"] == spec.version
    assert entry["timeout_seconds"] == (spec.timeout_seconds or 300)
    assert entry["entrypoint"] == str(path)


def test_a_spec_that_cannot_be_listed_names_its_file(tmp_path: Path) -> None:
    for name, text in (("list.yaml", "- not\n- a mapping\n"), ("bad.yaml", "a: [unclosed\n")):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(SpecMetadataError, match=re.escape(name)):
            catalog_entry(path)
    with pytest.raises(SpecMetadataError, match=re.escape("missing.yaml")):
        catalog_entry(tmp_path / "missing.yaml")
    path = tmp_path / "inputs.yaml"
    path.write_text("inputs: [topic]\n")
    with pytest.raises(SpecMetadataError, match="inputs"):
        catalog_entry(path)
