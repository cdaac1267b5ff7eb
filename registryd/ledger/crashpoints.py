"""Named crash points on the ledger's settlement write, for the crash tests
(kodosumi/crashpoints.py): `KODOSUMI_LEDGER_CRASH_AT=settle_before_commit:2` exits the
registry abruptly the second time a settlement has written its rows but not committed them;
`settle_after_commit` once it committed but has not answered yet."""

from __future__ import annotations

from kodosumi.crashpoints import CrashPoints

POINTS = ("settle_before_commit", "settle_after_commit")
reach = CrashPoints("KODOSUMI_LEDGER_CRASH_AT", POINTS).reach
