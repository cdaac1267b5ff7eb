"""What the contract store holds: signed quotes and receipts, and what is looked up by.

The token (a compact JWS, `kodosumi/contracts.py`) is the record; the other fields repeat
what the store must find or count it by (requester, expiry, the execution that used it; the
owner, flow and free allowance a receipt took).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kodosumi.charges import FreeUsed


@dataclass(frozen=True, slots=True)
class StoredQuote:
    quote_id: str
    requester: str
    flow: str
    issue_ns: int
    expire_ns: int
    token: str
    # The execution launched with it ("" while unused).
    execution_id: str = ""


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    receipt_id: str
    execution_id: str
    owner: str
    flow: str
    quote_id: str
    issue_ns: int
    token: str
    # What the run took of the owner's free allowance of the flow.
    free: FreeUsed = field(default_factory=FreeUsed)
