"""`koco balance`, `koco ledger`, `koco budget ...` and `koco credit grant`: the registry's
ledger (docs/market.md, "Budgets and settlement"). People read their own account; admins
read any, grant credit and set budgets."""

from __future__ import annotations

import csv
import sys

import click
from rich.table import Table

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import registry_option, registry_target
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.records import record
from kodoclient.cli.tables import timestamp
from kodoclient.ledger import LedgerClient
from kodosumi.v1 import ledger_pb2 as pb

_PERIOD = click.Choice(["day", "month"])
# `koco ledger` reads pages of this size until it has what was asked for.
_PAGE = 500


def _client(state: CliState, registry: str | None) -> LedgerClient:
    return LedgerClient(registry_target(state, registry))


def _subject(user: str | None, group: str | None) -> str:
    if (user is None) == (group is None):
        raise click.UsageError("name a USER or a --group GROUP (one of them)")
    return f"group/{group}" if group is not None else user or ""


def _split(args: tuple[str, ...], tail: int) -> tuple[str | None, tuple[str, ...]]:
    """An optional USER before `tail` required arguments."""
    if len(args) not in (tail, tail + 1):
        raise click.UsageError(f"expected [USER] and {tail} more arguments, got {len(args)}")
    return (args[0] if len(args) > tail else None), args[-tail:]


@click.command("balance")
@click.argument("account", required=False, default="")
@registry_option
@json_option
@click.pass_context
def balance(ctx: click.Context, account: str, registry: str | None) -> None:
    """Your balance per currency: posted, held by running work, available. Admins may name
    any ACCOUNT (`alice`, `node/n1`, `system/credit`)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        async with _client(state, registry) as client:
            response = await client.call("GetBalance", pb.GetBalanceRequest(account=account))
        if state.settings.json:
            for b in response.balances:
                state.emit(record(b))
            return exit_codes.OK
        if not response.balances:
            state.note(f"{response.account}: no postings yet")
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("ACCOUNT", "CURRENCY", "BALANCE", "HELD", "AVAILABLE"):
            table.add_column(column, justify="right" if column not in ("ACCOUNT",) else "left")
        for b in response.balances:
            table.add_row(b.account, b.currency, b.balance, b.held, b.available)
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@click.command("ledger")
@click.argument("account", required=False, default="")
@click.option("--currency", default="", help="Only postings in this currency.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Newest N."
)
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values with a header.")
@registry_option
@json_option
@click.pass_context
def ledger(
    ctx: click.Context,
    account: str,
    currency: str,
    limit: int,
    as_csv: bool,
    registry: str | None,
) -> None:
    """The postings of your account, newest first (admins: of any ACCOUNT)."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        entries: list[pb.LedgerEntry] = []
        token = ""
        async with _client(state, registry) as client:
            while len(entries) < limit:
                page = await client.call(
                    "ListEntries",
                    pb.ListEntriesRequest(
                        account=account,
                        currency=currency,
                        page_size=min(_PAGE, limit - len(entries)),
                        page_token=token,
                    ),
                )
                entries += page.entries
                token = page.next_page_token
                if not token:
                    break
        if state.settings.json:
            for e in entries:
                state.emit(record(e))
        elif as_csv:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(
                ["entry_id", "time", "kind", "debit", "credit", "amount", "currency", "by",
                 "receipt_id", "memo"]
            )  # fmt: skip
            for e in entries:
                writer.writerow(
                    [
                        e.entry_id,
                        e.time.ToJsonString(),
                        e.kind,
                        e.debit,
                        e.credit,
                        e.amount,
                        e.currency,
                        e.by,
                        e.receipt_id,
                        e.memo,
                    ]
                )
        else:
            table = Table(box=None, header_style="bold", pad_edge=False)
            for column in ("#", "TIME", "KIND", "FROM", "TO", "AMOUNT", "RECEIPT / MEMO"):
                table.add_column(column, justify="right" if column in ("#", "AMOUNT") else "left")
            for e in entries:
                table.add_row(
                    str(e.entry_id),
                    timestamp(e.time),
                    e.kind,
                    e.debit,
                    e.credit,
                    f"{e.amount} {e.currency}",
                    e.receipt_id or e.memo,
                )
            state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@click.group("budget")
def budget() -> None:
    """Spending budgets per user or group, per day or month and currency (admins set them;
    everyone sees their own)."""


@budget.command("set")
@click.argument("args", nargs=-1, required=True, metavar="[USER] AMOUNT CURRENCY")
@click.option("--group", help="The budget of a group (its members' spending together).")
@click.option("--period", type=_PERIOD, default="month", show_default=True)
@registry_option
@json_option
@click.pass_context
def budget_set(
    ctx: click.Context,
    args: tuple[str, ...],
    group: str | None,
    period: str,
    registry: str | None,
) -> None:
    """Set the budget of USER (or --group GROUP): at most AMOUNT CURRENCY per period
    (`koco budget set alice 50 EUR`, `koco budget set --group ml 200 EUR --period day`)."""
    state = state_of(ctx)
    user, (amount, currency) = _split(args, 2)
    subject = _subject(user, group)

    async def body() -> ExitCode:
        request = pb.SetBudgetRequest(
            subject=subject, amount=amount, currency=currency, period=period
        )
        async with _client(state, registry) as client:
            response = await client.call("SetBudget", request)
        b = response.budget
        if state.settings.json:
            state.emit(record(b))
        else:
            state.note(
                f"{b.subject}: {b.limit} {b.currency} per {b.period} "
                f"({b.used} used this {b.period}, {b.remaining} left)"
            )
        return exit_codes.OK

    execute(ctx, body)


@budget.command("clear")
@click.argument("args", nargs=-1, required=True, metavar="[USER] CURRENCY")
@click.option("--group", help="The budget of a group.")
@click.option("--period", type=_PERIOD, default="month", show_default=True)
@registry_option
@click.pass_context
def budget_clear(
    ctx: click.Context,
    args: tuple[str, ...],
    group: str | None,
    period: str,
    registry: str | None,
) -> None:
    """Remove the budget of USER (or --group GROUP) for CURRENCY and period."""
    state = state_of(ctx)
    user, (currency,) = _split(args, 1)
    subject = _subject(user, group)

    async def body() -> ExitCode:
        request = pb.DeleteBudgetRequest(subject=subject, currency=currency, period=period)
        async with _client(state, registry) as client:
            response = await client.call("DeleteBudget", request)
        state.note(f"{subject}: budget removed" if response.deleted else f"{subject}: none set")
        return exit_codes.OK

    execute(ctx, body)


@budget.command("show")
@click.argument("user", required=False)
@click.option("--group", help="The budgets of a group.")
@click.option("--all", "everyone", is_flag=True, help="Every budget (admins).")
@registry_option
@json_option
@click.pass_context
def budget_show(
    ctx: click.Context,
    user: str | None,
    group: str | None,
    everyone: bool,
    registry: str | None,
) -> None:
    """The budgets that apply to you (yours and your groups'), with what is used this
    period; or those of USER / --group GROUP / --all."""
    state = state_of(ctx)
    subject = "*" if everyone else f"group/{group}" if group else user or ""

    async def body() -> ExitCode:
        async with _client(state, registry) as client:
            response = await client.call("ListBudgets", pb.ListBudgetsRequest(subject=subject))
        if state.settings.json:
            for b in response.budgets:
                state.emit(record(b))
            return exit_codes.OK
        if not response.budgets:
            state.note("no budgets")
            return exit_codes.OK
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("SUBJECT", "PERIOD", "LIMIT", "USED", "LEFT"):
            table.add_column(
                column, justify="right" if column in ("LIMIT", "USED", "LEFT") else "left"
            )
        for b in response.budgets:
            table.add_row(
                b.subject,
                f"{b.period} {b.period_key}",
                f"{b.limit} {b.currency}",
                b.used,
                b.remaining,
            )
        state.show_table(table)
        return exit_codes.OK

    execute(ctx, body)


@click.group("credit")
def credit() -> None:
    """Credit for accounts (admins)."""


@credit.command("grant")
@click.argument("account")
@click.argument("amount")
@click.argument("currency")
@click.option("--memo", default="", help="Why (kept with the posting).")
@click.option("--key", default="", help="Idempotency key: the same key again grants once.")
@registry_option
@json_option
@click.pass_context
def credit_grant(
    ctx: click.Context,
    account: str,
    amount: str,
    currency: str,
    memo: str,
    key: str,
    registry: str | None,
) -> None:
    """Credit ACCOUNT (a user name, or `node/ID`) with AMOUNT CURRENCY from system/credit."""
    state = state_of(ctx)

    async def body() -> ExitCode:
        request = pb.GrantCreditRequest(
            account=account, amount=amount, currency=currency, memo=memo, key=key
        )
        async with _client(state, registry) as client:
            response = await client.call("GrantCredit", request)
        if state.settings.json:
            state.emit(record(response))
        else:
            e = response.entry
            again = " (granted before with this key: nothing new)" if response.replayed else ""
            state.note(f"{e.credit}: +{e.amount} {e.currency} (entry {e.entry_id}){again}")
        return exit_codes.OK

    execute(ctx, body)
