"""Issue 17: inputs described by the code and always validated, catalogs checked before
anyone launches. The real `koco` against a real node (gRPC + mTLS, Ray, SQLite), and the
real `kodosumid --check` / `--strict` as processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import main
from kodosumi.v1 import node_pb2
from kodosumid.app import NodeApp
from kodosumid.catalog_check import check_catalog
from kodosumid.config import FlowEntry
from tests.node.conftest import REPO, RunningNode, node_config

GOOD_SPEC = """\
name: brief
description: Writes a brief about a topic.
tags: [crew, yaml]
timeout_seconds: 90
llm: offline/scripted
inputs:
  topic: {type: string, description: What the brief is about}
  words: {type: integer, default: 50}
agents:
  writer:
    role: Writer
    goal: Write about {topic}
    backstory: Terse.
tasks:
  write:
    description: Write {words} words on {topic}.
    expected_output: A brief.
    agent: writer
"""
# Two mistakes: both are reported, not only the first.
BAD_SPEC = """\
name: bad
agents:
  writer: {role: Writer, goal: Write, backstory: Terse., colour: red}
tasks:
  write: {description: Write., expected_output: A brief., agent: ghost}
"""


def write_flows(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken_syntax.py").write_text("def flow(:\n    pass\n")
    (folder / "noisy.py").write_text(
        "print('imported noisy')\ndef flow(x: int) -> int:\n    return x\n"
    )
    specs = folder / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "brief.yaml").write_text(GOOD_SPEC)
    (specs / "bad.yaml").write_text(BAD_SPEC)
    return {"good": specs / "brief.yaml", "bad": specs / "bad.yaml"}


def catalog(folder: Path) -> tuple[FlowEntry, ...]:
    specs = write_flows(folder)
    return (
        FlowEntry("greet", "tests.engine.sigflows:greet"),
        FlowEntry("research", "tests.engine.sigflows:research"),
        FlowEntry("open-ended", "tests.engine.sigflows:open_ended"),
        FlowEntry("whole", "tests.engine.sigflows:whole"),
        FlowEntry("noisy", "noisy:flow"),
        FlowEntry(
            "explicit",
            "tests.engine.sigflows:needs",
            input_schema={"type": "object", "properties": {"count": {"type": "number"}}},
            given=frozenset({"name", "entrypoint", "input_schema"}),
        ),
        FlowEntry("brief", str(specs["good"]), given=frozenset({"name", "entrypoint"})),
        FlowEntry("broken-syntax", "broken_syntax:flow"),
        FlowEntry("missing-module", "no_such_module:flow"),
        FlowEntry("typo", "tests.engine.sigflows:greeet"),
        FlowEntry("bad-spec", str(specs["bad"])),
    )


@pytest.fixture(scope="module")
async def catalog_node(
    ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningNode]:
    folder = tmp_path_factory.mktemp("user-flows")
    config = node_config(
        tmp_path_factory.mktemp("catalog-node"),
        node_id="catalog-node",
        flows=catalog(folder),
        python_path=(str(folder), str(REPO)),
    )
    app = NodeApp(config)
    await app.start()
    node = RunningNode(app)
    yield node
    await node.close()
    await app.stop()


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_broken_flows_are_listed_unavailable_with_their_error(
    catalog_node: RunningNode,
) -> None:
    listed = await koco(catalog_node, "--json", "flows")
    assert listed.exit_code == 0, listed.output
    flows = {f["name"]: f for f in map(json.loads, listed.stdout.splitlines())}
    assert len(flows) == 11
    broken = {n: f.get("unavailable_reason", "") for n, f in flows.items()}
    assert (
        "SyntaxError" in broken["broken-syntax"] and "broken_syntax.py:1" in broken["broken-syntax"]
    )
    assert "no_such_module" in broken["missing-module"]
    assert "did you mean 'greet'" in broken["typo"]
    assert "colour: unknown key" in broken["bad-spec"] and "no agent 'ghost'" in broken["bad-spec"]
    assert not any(broken[n] for n in ("greet", "research", "noisy", "brief", "explicit"))
    table = await koco(catalog_node, "flows")
    assert "UNAVAILABLE" in table.stdout and "SyntaxError" in table.stdout

    info = (await catalog_node.node.GetNodeInfo(node_pb2.GetNodeInfoRequest(), timeout=10)).node
    assert "flows unavailable: broken-syntax, missing-module, typo, bad-spec" in (
        info.degraded_reason
    )
    assert {f.name for f in info.flows if f.unavailable_reason} == {
        "broken-syntax",
        "missing-module",
        "typo",
        "bad-spec",
    }

    # Launching one is FAILED_PRECONDITION (exit 6) with the error, not a run that fails.
    for name, said in (("broken-syntax", "SyntaxError"), ("typo", "did you mean")):
        ran = await koco(catalog_node, "run", name)
        assert ran.exit_code == 6, ran.output
        assert said in ran.stderr and "unavailable" in ran.stderr
    assert (await koco(catalog_node, "ls")).stdout.count("broken-syntax") == 0


async def test_inputs_come_from_the_signature_and_are_always_checked(
    catalog_node: RunningNode,
) -> None:
    misspelled = await koco(catalog_node, "run", "greet", "-i", "nmae=ada")
    assert misspelled.exit_code == 2, misspelled.output
    assert "inputs.nmae: unknown (expected one of: color, mode, name, times)" in misspelled.stderr
    wrong_type = await koco(catalog_node, "run", "greet", "-i", "times=many")
    assert wrong_type.exit_code == 2 and "times" in wrong_type.stderr
    ran = await koco(catalog_node, "run", "greet", "-i", "name=ada", "-i", "color=blue")
    assert ran.exit_code == 0, ran.output
    assert "hello ada in blue" in ran.stdout
    model = await koco(catalog_node, "run", "research", "-i", "topic=ray")
    assert model.exit_code == 0 and "ray at depth 2" in model.stdout, model.output
    assert (await koco(catalog_node, "run", "research", "-i", "depth=0")).exit_code == 2
    # **kwargs accepts more; a flow taking the whole mapping takes anything.
    extra = await koco(catalog_node, "run", "open-ended", "-i", "topic=t", "-i", "more=1")
    assert extra.exit_code == 0, extra.output
    assert (await koco(catalog_node, "run", "whole", "-i", "anything=1")).exit_code == 0
    # An explicit input_schema in the catalog wins over the signature.
    explicit = await koco(catalog_node, "flows", "explicit", "--schema")
    assert json.loads(explicit.stdout) == {
        "type": "object",
        "properties": {"count": {"type": "number"}},
    }


async def test_a_yaml_spec_publishes_its_inputs_description_tags_and_timeout(
    catalog_node: RunningNode,
) -> None:
    shown = await koco(catalog_node, "--json", "flows", "brief")
    flow = json.loads(shown.stdout)
    assert flow["description"] == "Writes a brief about a topic."
    assert flow["tags"] == ["crew", "yaml"] and flow["timeout_seconds"] == 90
    assert flow["input_schema"]["required"] == ["topic"]
    missing = await koco(catalog_node, "run", "brief")
    assert missing.exit_code == 2 and "topic" in missing.stderr, missing.output
    wrong = await koco(catalog_node, "run", "brief", "-i", "topic=x", "-i", "words=many")
    assert wrong.exit_code == 2 and "words" in wrong.stderr


async def test_koco_flows_name_shows_the_inputs_readably(catalog_node: RunningNode) -> None:
    shown = await koco(catalog_node, "flows", "greet")
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "Greets someone, `times` times." in out and "second paragraph" not in out
    for text in ("INPUT", "REQUIRED", "DEFAULT", "Who to greet", '"world"', "integer"):
        assert text in out
    assert 'one of "loud", "soft"' in out
    schema = json.loads((await koco(catalog_node, "flows", "greet", "--schema")).stdout)
    assert schema["additionalProperties"] is False
    required = await koco(catalog_node, "flows", "research")
    assert "topic" in required.stdout and "yes" in required.stdout
    broken = await koco(catalog_node, "flows", "typo")
    assert broken.exit_code == 0 and "UNAVAILABLE" in broken.stdout
    assert (await koco(catalog_node, "flows", "nope")).exit_code == 3
    assert (await koco(catalog_node, "flows", "--schema")).exit_code == 2


async def test_a_module_that_kills_its_importer_is_marked_alone(tmp_path: Path) -> None:
    """Hostile: a module that ends the checking process at import (os._exit) costs only its
    own flow; one that exits politely (SystemExit) is an error like any other; one that
    floods its output while importing is checked like any other."""
    (tmp_path / "killer.py").write_text("import os\nos._exit(3)\n")
    (tmp_path / "quitter.py").write_text("raise SystemExit('no')\n")
    # Prints 32 MiB while it imports (to stdout and straight to fd 1): the node keeps none
    # of it in memory and still reads the verdict.
    (tmp_path / "loud.py").write_text(
        "import os\nfor _ in range(16):\n    print('x' * 2**20)\n    os.write(1, b'y' * 2**20)\n"
        "def flow(n: int) -> int:\n    return n\n"
    )
    flows = (
        FlowEntry("killer", "killer:flow"),
        FlowEntry("quitter", "quitter:flow"),
        FlowEntry("loud", "loud:flow"),
        FlowEntry("greet", "tests.engine.sigflows:greet"),
    )
    check = await check_catalog(flows, (str(tmp_path), str(REPO)))
    by_name = {f.name: f for f in check.flows}
    assert "exited with code 3" in by_name["killer"].unavailable
    assert "SystemExit" in by_name["quitter"].unavailable
    assert by_name["greet"].unavailable == ""
    assert by_name["loud"].unavailable == "" and by_name["loud"].input_schema["required"] == ["n"]
    assert by_name["greet"].input_schema["additionalProperties"] is False


def _kodosumid(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "kodosumid", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


TOML = """\
[node]
listen = "127.0.0.1:0"
insecure = true
python_path = [".", "{repo}"]

[discovery]
enabled = false

[[flows]]
name = "greet"
entrypoint = "tests.engine.sigflows:greet"

[[flows]]
name = "brief"
entrypoint = "specs/brief.yaml"   # relative to this file

[[flows]]
name = "broken-syntax"
entrypoint = "broken_syntax:flow"

[[flows]]
name = "typo"
entrypoint = "tests.engine.sigflows:greeet"

[[flows]]
name = "bad-spec"
entrypoint = "specs/bad.yaml"
"""


def test_kodosumid_check_reports_every_error_and_strict_refuses_to_start(
    tmp_path: Path,
) -> None:
    write_flows(tmp_path)
    config = tmp_path / "node.toml"
    config.write_text(TOML.format(repo=REPO))
    checked = _kodosumid("--check", str(config), cwd=tmp_path)
    assert checked.returncode == 2, checked.stderr
    out = checked.stdout
    assert "ok      greet" in out and "ok      brief" in out
    assert "BROKEN  broken-syntax" in out and "SyntaxError" in out
    assert "did you mean 'greet'" in out
    # Both mistakes of the bad spec, each with its line.
    assert "bad.yaml:3:" in out and "bad.yaml:5:" in out
    assert "5 flows, 3 broken" in out

    state = tmp_path / "state"
    strict = _kodosumid(
        "--config", str(config), "--state-dir", str(state), "--strict", cwd=tmp_path
    )
    assert strict.returncode == 2
    assert "--strict" in strict.stderr and "broken-syntax" in strict.stderr
    assert not (state / "node.json").exists()

    # Bad keys of several entries are all named at once.
    config.write_text(
        TOML.format(repo=REPO)
        + '\n[[flows]]\nname = "x"\nentrypoint = "a:b"\nisolation = "weird"\n'
        + '\n[[flows]]\nname = "y"\nentrypoint = "a:b"\nretry = { attempts = 0 }\n'
    )
    bad = _kodosumid("--check", str(config), cwd=tmp_path)
    assert bad.returncode == 2
    assert "flows[5].isolation" in bad.stderr and "flows[6].retry.attempts" in bad.stderr


def _koco(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "kodoclient", *args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_koco_validate_reports_every_error_or_the_inputs(tmp_path: Path) -> None:
    specs = write_flows(tmp_path)
    (tmp_path / "mine.py").write_text(
        "def greet(name: str = 'world', times: int = 1) -> str:\n"
        '    """Greets someone."""\n'
        "    return name * times\n"
    )
    (tmp_path / "killer.py").write_text("import os\nos._exit(3)\n")
    bad = _koco("validate", str(specs["bad"]), cwd=tmp_path)
    assert bad.returncode == 2
    assert "2 errors" in bad.stdout and "colour" in bad.stdout and "ghost" in bad.stdout
    good = _koco("validate", "mine.py:greet", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "Greets someone." in good.stdout and '"world"' in good.stdout
    assert "integer" in good.stdout
    typo = _koco("validate", "mine:gret", cwd=tmp_path)
    assert typo.returncode == 2 and "did you mean 'greet'" in typo.stdout
    spec = json.loads(_koco("--json", "validate", "specs/brief.yaml", cwd=tmp_path).stdout)
    assert spec["ok"] is True and spec["input_schema"]["required"] == ["topic"]
    killed = _koco("validate", "killer:flow", cwd=tmp_path)
    assert killed.returncode == 2 and "exited with code 3" in killed.stdout


def test_the_registry_relays_why_a_flow_is_unavailable() -> None:
    from kodosumi.v1 import flow_pb2
    from registryd.codec import flow_entry, flow_to_pb

    flow = flow_pb2.Flow(name="typo", unavailable_reason="no attribute 'greeet'")
    assert flow_to_pb(flow_entry(flow, "node-a", 0)).unavailable_reason == flow.unavailable_reason
