"""The CLI through click's CliRunner, talking real gRPC to the scripted node on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from kodoclient import Client, ConnectConfig
from kodoclient.cli import exit_codes as ec
from kodoclient.cli import main
from kodoclient.cli.context import CliState
from kodosumi.v1 import event_pb2 as pb

from .fake_node import FakeNode, status_event

Invoke = Callable[..., Result]


@pytest.fixture
def koco(fake_node: FakeNode) -> Invoke:
    def invoke(*args: str, state: CliState | None = None, input: str | None = None) -> Result:
        argv = ["--node", fake_node.address, "--insecure", "--timeout", "5", *args]
        return CliRunner().invoke(main, argv, obj=state, input=input, catch_exceptions=False)

    return invoke


def lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_help_lists_commands_and_exit_codes() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "flows", "launch", "watch", "status", "ls", "cancel", "input"):
        assert f"  {command} " in result.output
    assert "UNREACHABLE" in result.output and "TIMED_OUT" in result.output


def test_flows(koco: Invoke) -> None:
    result = koco("flows")
    assert result.exit_code == 0
    assert "hello" in result.stdout and "flows.hello:main" in result.stdout
    rows = lines(koco("--json", "flows", "--tag", "demo"))
    assert [r["name"] for r in rows] == ["hello"]


def test_run_follows_to_success_and_prints_the_result(koco: Invoke, fake_node: FakeNode) -> None:
    result = koco("run", "hello", "-i", "name=Ada")
    assert result.exit_code == ec.OK.code, result.output
    assert "│ greeting Ada" in result.stdout
    assert "Hello, Ada!" in result.stdout
    assert "SUCCEEDED" in result.stdout.splitlines()[-1]
    assert "launched hello as" in result.stderr


def test_run_by_entrypoint(koco: Invoke) -> None:
    assert koco("run", "flows.hello:main").exit_code == 0


def test_run_json_is_one_event_per_line(koco: Invoke) -> None:
    result = koco("run", "hello", "--json", "--inputs-json", '{"name": "Bo"}')
    assert result.exit_code == 0
    events = lines(result)
    assert [int(str(e["seq"])) for e in events] == list(range(1, 8))
    assert events[-1]["status_changed"] == {"status": "EXECUTION_STATUS_SUCCEEDED"}
    assert {"result": {"text": "Hello, Bo!"}}.items() <= events[-2].items()
    assert result.stderr == ""


def test_failed_execution_exits_failed(koco: Invoke) -> None:
    result = koco("run", "fail")
    assert result.exit_code == ec.FAILED.code
    assert "ValueError: bad" in result.stderr  # the failure; its traceback only with -v
    assert "Traceback: x" not in result.stderr
    verbose = koco("-v", "run", "fail")
    assert verbose.exit_code == ec.FAILED.code
    assert "Traceback: x" in verbose.stderr


def test_invalid_inputs_exit_usage_with_violations(koco: Invoke) -> None:
    result = koco("run", "hello", "-i", "name=3")
    assert result.exit_code == ec.USAGE.code
    assert "INVALID_INPUTS" in result.stderr and "inputs.name: must be a string" in result.stderr


def test_bad_assignment_is_a_usage_error(koco: Invoke) -> None:
    result = koco("launch", "hello", "-i", "oops")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


def test_unknown_flow_on_a_named_node_is_not_found(koco: Invoke) -> None:
    result = koco("run", "nope")
    assert result.exit_code == ec.NOT_FOUND.code
    assert "known: approve, fail, form, hello" in result.stderr


def test_launch_then_status_then_watch(koco: Invoke, fake_node: FakeNode) -> None:
    launched = koco("launch", "hello")
    execution_id = launched.stdout.strip()
    assert launched.exit_code == 0 and execution_id in fake_node.runs
    status = lines(koco("status", execution_id, "--json"))
    assert status[0]["execution_id"] == execution_id
    assert status[0]["status"] == "EXECUTION_STATUS_SUCCEEDED"
    watched = koco("watch", execution_id, "--after-seq", "5", "--json")
    assert [int(str(e["seq"])) for e in lines(watched)] == [6, 7]
    assert watched.exit_code == 0


def test_watch_exit_code_follows_the_outcome(koco: Invoke, fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [status_event(pb.EXECUTION_STATUS_TIMED_OUT, "60 s")])
    result = koco("watch", execution_id)
    assert result.exit_code == ec.TIMED_OUT.code
    assert "TIMED_OUT" in result.stdout


def test_not_found(koco: Invoke) -> None:
    for args in (("status", "nope"), ("watch", "nope"), ("cancel", "nope")):
        result = koco(*args)
        assert result.exit_code == ec.NOT_FOUND.code, args
        assert "EXECUTION_NOT_FOUND" in result.stderr


def test_json_errors_are_json_on_stderr(koco: Invoke) -> None:
    result = koco("--json", "status", "nope")
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "NOT_FOUND" and error["reason"] == "EXECUTION_NOT_FOUND"
    assert error["exit_code"] == ec.NOT_FOUND.code


def test_cancel_then_cancel_again_conflicts(koco: Invoke, fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    first = koco("cancel", execution_id, "--reason", "changed my mind")
    assert first.exit_code == 0 and "CANCELLED" in first.stdout
    assert fake_node.runs[execution_id].execution.status_reason == "changed my mind"
    assert koco("cancel", execution_id).exit_code == ec.CONFLICT.code


def test_ls_filters_and_limits(koco: Invoke, fake_node: FakeNode) -> None:
    fake_node.batch_size = 50
    ids = [fake_node.create("hello") for _ in range(5)]
    fake_node.append(ids[0], [status_event(pb.EXECUTION_STATUS_FAILED)])
    rows = lines(koco("ls", "--json", "--limit", "3"))
    assert [r["execution_id"] for r in rows] == ids[::-1][:3]
    failed = lines(koco("ls", "--json", "--status", "failed,cancelled", "--flow", "hello"))
    assert [r["execution_id"] for r in failed] == [ids[0]]
    table = koco("ls", "--status", "pending", "--limit", "0")
    assert table.exit_code == 0 and all(i in table.stdout for i in ids[1:])
    assert koco("ls", "--status", "bogus").exit_code == 2


def test_ls_pages_through_everything(koco: Invoke, fake_node: FakeNode) -> None:
    ids = [fake_node.create("hello") for _ in range(120)]
    rows = lines(koco("ls", "--json", "--limit", "0"))
    assert len(rows) == 120 and rows[0]["execution_id"] == ids[-1]


def test_unreachable_node(tmp_path: object) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(
        main, ["--node", f"127.0.0.1:{port}", "--insecure", "--timeout", "2", "flows"]
    )
    assert result.exit_code == ec.UNREACHABLE.code
    assert "UNAVAILABLE" in result.stderr and "hint:" in result.stderr
    # A named node that is down: run does not start an embedded one in its stead.
    result = CliRunner().invoke(
        main, ["--node", f"127.0.0.1:{port}", "--insecure", "--timeout", "2", "run", "hello"]
    )
    assert result.exit_code == ec.UNREACHABLE.code


def test_input_finds_the_open_request(koco: Invoke, fake_node: FakeNode) -> None:
    execution_id = koco("launch", "approve").stdout.strip()
    assert koco("input", execution_id, "maybe").exit_code == 2  # approvals take yes/no
    result = koco("input", execution_id, "yes")
    assert result.exit_code == 0, result.output
    assert fake_node.runs[execution_id].provided == [("r1", True)]
    assert fake_node.runs[execution_id].execution.status == pb.EXECUTION_STATUS_SUCCEEDED
    # Nothing is open any more.
    again = koco("input", execution_id, "yes")
    assert again.exit_code == ec.CONFLICT.code and "awaits no input" in again.stderr


def test_input_checks_forms_against_the_schema(koco: Invoke, fake_node: FakeNode) -> None:
    execution_id = koco("launch", "form").stdout.strip()
    bad = koco("input", execution_id, '{"name": "x"}')
    assert bad.exit_code == 2 and "'count' is a required property" in bad.output
    good = koco("--json", "input", execution_id, "--request-id", "r1", '{"count": 2}')
    assert good.exit_code == 0
    assert lines(good) == [
        {"execution_id": execution_id, "request_id": "r1", "value": {"count": 2}}
    ]


def test_input_with_several_open_requests_needs_a_request_id(
    koco: Invoke, fake_node: FakeNode
) -> None:
    execution_id = fake_node.create("approve")
    fake_node.append(
        execution_id,
        [
            pb.Event(input_requested=pb.InputRequested(request_id=r, kind=pb.INPUT_KIND_TEXT))
            for r in ("a", "b")
        ],
    )
    result = koco("input", execution_id, "hi")
    assert result.exit_code == 2 and "several requests are open (a, b)" in result.output


def test_run_prompts_for_an_approval(koco: Invoke, fake_node: FakeNode) -> None:
    state = CliState(interactive=True)
    result = koco("run", "approve", state=state, input="perhaps\ny\n")
    assert result.exit_code == 0, result.output
    assert "answer yes or no" in result.stdout  # the first answer was re-asked
    (run,) = fake_node.runs.values()
    assert run.provided == [("r1", True)]
    assert "answer: True" in result.stdout


def test_run_prompts_a_form_field_by_field(koco: Invoke, fake_node: FakeNode) -> None:
    state = CliState(interactive=True)
    # Required fields come first. count must be an integer: the first round fails and the
    # form is asked again.
    result = koco("run", "form", state=state, input="many\n2\nAda\n")
    assert result.exit_code == 0, result.output
    (run,) = fake_node.runs.values()
    assert run.provided == [("r1", {"name": "Ada", "count": 2})]


def test_run_without_a_terminal_waits_for_an_answer_from_elsewhere(
    koco: Invoke, fake_node: FakeNode, fake_config: ConnectConfig
) -> None:
    def answer_when_asked() -> None:
        with Client(fake_config) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                awaiting = [
                    i
                    for i, r in list(fake_node.runs.items())
                    if r.execution.status == pb.EXECUTION_STATUS_AWAITING_INPUT
                ]
                if awaiting:
                    client.provide_input(awaiting[0], "r1", False)
                    return
                time.sleep(0.02)

    helper = threading.Thread(target=answer_when_asked)
    helper.start()
    result = koco("run", "approve", state=CliState(interactive=False))
    helper.join()
    assert result.exit_code == 0, result.output
    assert "answer with: koco input" in result.stdout  # no terminal: tell how to answer
    assert "answer: False" in result.stdout


def test_watch_says_when_it_resumes(koco: Invoke, fake_node: FakeNode) -> None:
    execution_id = fake_node.create("hello")
    fake_node.append(execution_id, [status_event(pb.EXECUTION_STATUS_RUNNING)])
    fake_node.append(execution_id, [status_event(pb.EXECUTION_STATUS_SUCCEEDED)])
    fake_node.batch_size, fake_node.break_after, fake_node.breaks = 1, 1, 1
    result = koco("watch", execution_id)
    assert result.exit_code == 0
    assert "⟳ reconnecting to" in result.stdout
    assert "(attempt 1; resuming after seq 1): UNAVAILABLE: scripted break" in result.stdout
    assert "✔ reconnected to" in result.stdout and "after 1 attempt;" in result.stdout
    assert result.stdout.count("● RUNNING") == 1


def test_an_entrypoint_missing_on_a_named_node_is_not_found_naming_embedded(
    koco: Invoke, fake_node: FakeNode
) -> None:
    """Issue 11 item 5: with --node, a local node is never started in the named one's stead."""
    result = koco("run", "flows.other:main", state=CliState(node_command=("/bin/false",)))
    assert result.exit_code == ec.NOT_FOUND.code, result.output
    assert "koco run --embedded flows.other:main" in result.stderr
    assert "starting an embedded node" not in result.stderr
    assert fake_node.runs == {}
