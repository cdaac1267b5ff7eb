"""`koco hold list` and `koco hold release`: holds on an account's funds — who reserves your
money for runs that have not ended, and (admins) releasing one whose seller is gone."""

from __future__ import annotations

import click
from rich.table import Table

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.records import record
from kodoclient.cli.tables import timestamp
from kodoclient.ledger import LedgerClient
from kodosumi.v1 import ledger_pb2 as pb

_STATE = {
    pb.HOLD_STATE_OPEN: "open",
    pb.HOLD_STATE_SETTLED: "settled",
    pb.HOLD_STATE_RELEASED: "released",
    pb.HOLD_STATE_EXPIRED: "expired",
}


@click.group("hold")
def hold() -> None:
    """Holds: funds reserved for runs that have not ended yet."""


@hold.command("list")
@click.argument("account", required=False, default="")
@click.option("--all", "include_closed", is_flag=True, help="Also settled and released ones.")
@registry_option
@json_option
@click.pass_context
def list_(ctx: click.Context, account: str, include_closed: bool, registry: str | None) -> None:
    """Holds on your funds, newest first (admins: on any ACCOUNT's)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.ListHoldsRequest(account=account, include_closed=include_closed)
        async with LedgerClient(registry_target(state, registry)) as client:
            response = await client.call("ListHolds", request)
        if state.settings.json:
            for h in response.holds:
                state.emit(record(h))
            return exit_codes.OK
        if not response.holds:
            state.note("no holds")
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("HOLD", "BY", "KEY", "AMOUNT", "STATE", "SINCE", "UNTIL"):
            table.add_column(column, justify="right" if column == "AMOUNT" else "left")
        for h in response.holds:
            settled = f" ({h.settled_amount} paid)" if h.state == pb.HOLD_STATE_SETTLED else ""
            table.add_row(
                h.hold_id,
                h.payee,
                h.key,
                f"{h.amount} {h.currency}",
                _STATE.get(h.state, "?") + settled,
                timestamp(h.create_time),
                timestamp(h.expire_time),
            )
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@hold.command("release")
@click.argument("hold_id")
@registry_option
@json_option
@click.pass_context
def release(ctx: click.Context, hold_id: str, registry: str | None) -> None:
    """Admins: release hold HOLD_ID (nothing is paid; its seller can no longer settle it)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with LedgerClient(registry_target(state, registry)) as client:
            response = await client.call("CancelHold", pb.CancelHoldRequest(hold_id=hold_id))
        if state.settings.json:
            state.emit(record(response.hold))
        else:
            h = response.hold
            state.note(f"hold {h.hold_id} of {h.account}: {_STATE.get(h.state, '?')}")
        return exit_codes.OK

    execute(ctx, body)
