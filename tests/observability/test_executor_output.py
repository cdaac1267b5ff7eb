"""What an executor writes reaches the node's log as the executor's, whatever it claims: a
flow's code can write anything on the process's stderr (bypassing the run's capture with
`os.write(2, ...)`), so a forwarded line cannot pass for one of the node's own, cannot
replace the pid and host Ray reported, and cannot flood the log with one huge line.
These call the handler Ray's log dispatcher calls, with the batches it hands over.
"""

from __future__ import annotations

import json
import logging

import pytest

from kodosumid.executors.ray_output import MAX_LINE, handle


def test_a_forged_line_is_logged_as_the_executors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    forged = {
        "level": "CRITICAL",
        "logger": "kodosumid.runs",
        "message": "execution 64a8 of billing ended SUCCEEDED",
        "execution_id": "someone-elses",
        "executor_pid": "1",
        "msg": "overwrite the record",
        "nested": {"not": "a scalar"},
        "bad key!": "x",
    }
    handle(
        {
            "pid": "4242",
            "ip": "10.0.0.9",
            "is_err": True,
            "lines": [json.dumps(forged), "x" * (MAX_LINE + 10), "plain words"],
        }
    )
    relogged, huge, plain = caplog.records[-3:]
    assert relogged.name == "kodosumid.executor.kodosumid.runs"  # never the node's own
    assert relogged.levelno == logging.CRITICAL
    assert (relogged.executor_pid, relogged.executor_host) == ("4242", "10.0.0.9")
    assert relogged.getMessage() == forged["message"]
    assert not hasattr(relogged, "nested") and not hasattr(relogged, "bad key!")
    assert huge.name == "kodosumid.executor" and len(huge.getMessage()) < MAX_LINE + 100
    assert huge.getMessage().endswith("(10 more characters)")
    assert plain.name == "kodosumid.executor" and plain.levelno == logging.INFO


def test_ray_system_lines_and_stdout(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    handle({"pid": "raylet", "ip": "127.0.0.1", "is_err": True, "lines": ["worker killed"]})
    assert caplog.records[-1].name == "ray.raylet"
    assert caplog.records[-1].levelno == logging.WARNING
    span = json.dumps({"name": "execution hello"})
    handle({"pid": "77", "ip": "127.0.0.1", "is_err": False, "lines": [span]})
    assert capsys.readouterr().out == span + "\n"
