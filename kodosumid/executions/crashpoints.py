"""Named crash points on the drain -> store -> publish -> acknowledge path, for tests
(kodosumi/crashpoints.py): `KODOSUMI_CRASH_AT=after_store:3` exits the node abruptly the
third time it reaches `after_store`."""

from __future__ import annotations

from kodosumi.crashpoints import CrashPoints

POINTS = ("after_drain", "after_store", "after_publish")
reach = CrashPoints("KODOSUMI_CRASH_AT", POINTS).reach
