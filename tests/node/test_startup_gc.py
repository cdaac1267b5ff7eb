"""The daemon keeps what start-up made out of later full collections (kodosumid/cli.py):
such a collection walks only what came after, instead of stopping the event loop for the
whole heap (0.1-0.5 s every ~10 s under the fan-out bench's load, docs/performance.md)."""

from __future__ import annotations

import gc
import weakref

from kodosumid.cli import keep_startup_out_of_collections


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_start_up_objects_are_frozen_and_its_garbage_collected_first() -> None:
    gc.unfreeze()
    garbage = _Cycle()
    gone = weakref.ref(garbage)
    del garbage  # only the collector frees a cycle: frozen, it would stay forever
    try:
        keep_startup_out_of_collections()
        assert gc.get_freeze_count() > 0
        assert gone() is None
        gc.collect()
        assert gc.get_freeze_count() > 0  # still out of reach after a full collection
    finally:
        gc.unfreeze()  # the test session's objects go back to the collector
