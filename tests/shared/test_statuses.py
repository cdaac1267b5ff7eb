"""One vocabulary of execution statuses (`kodosumi/statuses.py`) for every part."""

from __future__ import annotations

import pytest

from kodosumi import statuses
from kodosumi.v1 import event_pb2

S = event_pb2


def test_the_terminal_statuses_and_the_attempt_endings() -> None:
    assert {
        S.EXECUTION_STATUS_SUCCEEDED,
        S.EXECUTION_STATUS_FAILED,
        S.EXECUTION_STATUS_CANCELLED,
        S.EXECUTION_STATUS_TIMED_OUT,
    } == statuses.TERMINAL
    assert statuses.TERMINAL | {S.EXECUTION_STATUS_RETRYING} == statuses.ATTEMPT_ENDING


def test_every_part_uses_the_one_set() -> None:
    import engine.buffer
    import engine.tracing
    import kodoclient
    import kodoclient.timeline
    import kodosumid.event_store
    import kodosumid.executors.flow_caller

    assert kodoclient.TERMINAL_STATUSES is statuses.TERMINAL
    assert kodoclient.timeline.TERMINAL is statuses.TERMINAL
    assert kodosumid.event_store.TERMINAL is statuses.TERMINAL
    assert kodosumid.executors.flow_caller.TERMINAL is statuses.TERMINAL
    assert engine.buffer.ATTEMPT_ENDING is statuses.ATTEMPT_ENDING
    assert engine.tracing._TERMINAL is statuses.ATTEMPT_ENDING


def test_words_both_ways() -> None:
    for word in statuses.status_words():
        assert statuses.status_word(statuses.parse_status(word)) == word
    assert "UNSPECIFIED" not in statuses.status_words()
    assert statuses.parse_status("awaiting-input") == S.EXECUTION_STATUS_AWAITING_INPUT
    assert statuses.parse_status("EXECUTION_STATUS_RUNNING") == S.EXECUTION_STATUS_RUNNING
    assert statuses.status_word(999) == "UNKNOWN(999)"
    assert statuses.status_word(999, unknown="999") == "999"
    with pytest.raises(ValueError, match="unknown status 'nope'"):
        statuses.parse_status("nope")


def test_the_terminal_event() -> None:
    done = S.Event(seq=3)
    done.status_changed.status = S.EXECUTION_STATUS_FAILED
    running = S.Event(seq=2)
    running.status_changed.status = S.EXECUTION_STATUS_RUNNING
    assert statuses.is_terminal_event(done)
    assert not statuses.is_terminal_event(running)
    assert not statuses.is_terminal_event(S.Event(seq=1))
