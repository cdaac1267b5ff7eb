"""The launch's inputs event, stored without the inputs it shows.

A launch keeps its inputs once, as exact JSON beside the execution row (the flow receives them
from there after a restart). The `InputsReceived` event the node writes at launch shows the
same inputs; the SQLite store keeps that event without them and puts them back on every read,
so a watcher receives the event as it was emitted (byte for byte: the node writes it with
deterministic serialization, fields in number order and map entries sorted by key, whatever
order a hash table would give them) while a 4 MiB launch costs 4 MiB.
"""

from __future__ import annotations

import json
from typing import Any

from kodosumi.jsonvalue import dict_to_struct
from kodosumi.v1 import event_pb2


def strip_inputs(events: list[bytes], inputs: dict[str, Any]) -> tuple[list[bytes], int]:
    """`events` (seq 1..n) with the event that shows exactly `inputs` stored without them,
    and that event's seq (0: none does; nothing is changed)."""
    expected = dict_to_struct(inputs)
    for i, data in enumerate(events):
        event = event_pb2.Event.FromString(data)
        # Only an exact match may be rebuilt from the JSON; anything else is kept whole.
        if event.HasField("inputs_received") and event.inputs_received.inputs == expected:
            if event.SerializeToString(deterministic=True) != data:
                return events, 0  # not written deterministically: it could not be rebuilt exactly
            event.inputs_received.ClearField("inputs")
            return [
                *events[:i],
                event.SerializeToString(deterministic=True),
                *events[i + 1 :],
            ], i + 1
    return events, 0


def restore_inputs(stub: bytes, inputs: str | bytes) -> bytes:
    """The stored event (`strip_inputs`) with its inputs (the stored JSON) put back."""
    event = event_pb2.Event.FromString(stub)
    event.inputs_received.inputs.SetInParent()  # set even when there are none, as at launch
    dict_to_struct(json.loads(inputs), event.inputs_received.inputs)
    return event.SerializeToString(deterministic=True)
