"""quote.json and receipt.json: a signed token with its claims beside it, for people to read,
and how `koco verify` checks them (`is_contract`, `check_contract`).

Only the token is signed. Reading a file back checks that the claims beside it are the
token's own, so an edited amount in the readable part is reported as tampering instead of
being shown as if the node had signed it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from kodoclient.cli.context import CliState
from kodosumi.contracts import QUOTE, ContractError, read_contract, verify_contract


def contract_document(token: str) -> dict[str, Any]:
    kind, claims = read_contract(token)
    return {"kind": kind, kind: claims, "token": token}


def write_contract(path: Path, token: str) -> None:
    path.write_text(json.dumps(contract_document(token), indent=2, ensure_ascii=False) + "\n")


def token_of(text: str, where: str) -> str:
    """The token in a quote.json / receipt.json (or a bare token); the claims beside it must
    be the token's."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return stripped
    try:
        document = json.loads(stripped)
    except ValueError as e:
        raise ContractError(f"{where}: not JSON: {e}") from None
    if not isinstance(document, dict) or not isinstance(document.get("token"), str):
        raise ContractError(f"{where}: no signed token in it (a quote.json or receipt.json?)")
    token: str = document["token"]
    kind, claims = read_contract(token)
    shown = document.get(kind)
    if shown is not None and shown != claims:
        changed = sorted(
            key
            for key in set(claims) | (set(shown) if isinstance(shown, dict) else set())
            if not isinstance(shown, dict) or shown.get(key) != claims.get(key)
        )
        raise ContractError(
            f"{where}: the {kind}'s readable fields differ from what the node signed "
            f"({', '.join(changed) or kind}): the file was changed"
        )
    return token


def is_contract(text: str) -> bool:
    if text.startswith("{"):
        return True
    try:
        read_contract(text)
    except ContractError:
        return False
    return True


def check_contract(state: CliState, text: str, where: str, ca: x509.Certificate) -> bool:
    """Verify a quote or receipt and say what it is; False when it does not verify."""
    try:
        verified = verify_contract(token_of(text, where), ca)
    except ContractError as e:
        if state.settings.json:
            state.emit({"valid": False, "error": str(e)})
        else:
            state.out.print(
                f"INVALID: {e}", style="red", highlight=False, markup=False, soft_wrap=True
            )
        return False
    claims = verified.claims
    if state.settings.json:
        state.emit({"valid": True, "kind": verified.kind, "signer": verified.signer, **claims})
        return True
    if verified.kind == QUOTE:
        expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        late = " (EXPIRED)" if expires <= dt.datetime.now(dt.UTC) else ""
        text = (
            f"valid quote {claims['jti']} signed by {verified.signer}: flow {claims['flow']}, "
            f"ceiling {claims['ceiling']} {claims['currency']}, for {claims['sub']}, "
            f"expires {expires.isoformat(timespec='seconds')}{late}"
        )
    else:
        text = (
            f"valid receipt {claims['jti']} signed by {verified.signer}: execution "
            f"{claims['execution']} ({claims['flow']}) {claims['status']}, amount "
            f"{claims['amount']} {claims['currency']}, owner {claims['sub']}"
        )
    state.out.print(text, highlight=False, markup=False, soft_wrap=True)
    return True
