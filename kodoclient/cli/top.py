"""`koco top`: a live dashboard of a node — or, with `--network`, of the network it sees —
with its executions, rates and alerts.

Rates come from the counters in `NodeLoad` (launched, ended, failed, events stored): two
readings `--interval` apart. The network view is the node's peer table (`ListPeers`: peers
from the registry and the LAN, with the node's own health checks), or with `--registry` the
registry's `ListNodes`; load figures are what each node last reported. `--once` prints one
frame (for scripts, and with `--json` as one JSON object).

The rooms: `top_view` (the snapshot, rates and panels drawn from it) and `top_readings` (how
a snapshot is read from the node and the registry); this module holds the command.
"""

from __future__ import annotations

import asyncio

import click
from rich.live import Live

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.cli.top_readings import AlertFeed, RegistryNodes, take
from kodoclient.cli.top_view import Snapshot, dashboard, rates, snapshot_record

# Read from here by the tests and older callers.
__all__ = ["Snapshot", "dashboard", "rates", "snapshot_record", "take", "top"]


@click.command("top")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between refreshes.",
)
@click.option("--once", is_flag=True, help="Print one frame and exit (no live display).")
@click.option(
    "--network", is_flag=True, help="Also show the node's peers (registry and LAN) and their load."
)
@click.option(
    "--registry",
    metavar="HOST:PORT",
    help="Also show every node this registry knows ('-': $KODOSUMI_REGISTRY, your login's, "
    "a local one).",
)
@json_option
@click.pass_context
def top(
    ctx: click.Context, interval: float, once: bool, network: bool, registry: str | None
) -> None:
    """A live dashboard of the node (or the network): executions, rates and alerts."""
    state = state_of(ctx)
    once = once or state.settings.json

    async def body() -> ExitCode:
        registry_view = (
            RegistryNodes(state, None if registry == "-" else registry) if registry else None
        )
        try:
            async with AsyncClient(state.settings.connect_config()) as client:
                feed = AlertFeed(client)
                if once:
                    await feed.once()
                    snapshot = await take(client, feed, registry_view, None, network)
                    if state.settings.json:
                        state.emit(snapshot_record(snapshot))
                    else:
                        state.out.print(dashboard(snapshot))
                    return exit_codes.OK
                # The alerts stored so far are in the first frame; new ones follow.
                await feed.once()
                feed.start()
                previous: Snapshot | None = None
                try:
                    if not state.out.is_terminal:
                        # Batch mode (a pipe or a file): one frame after another, like `top -b`.
                        while True:
                            previous = await take(client, feed, registry_view, previous, network)
                            state.out.print(dashboard(previous))
                            state.out.file.flush()
                            await asyncio.sleep(interval)
                    with Live(console=state.out, auto_refresh=False, transient=False) as live:
                        while True:
                            previous = await take(client, feed, registry_view, previous, network)
                            live.update(dashboard(previous), refresh=True)
                            await asyncio.sleep(interval)
                finally:
                    await feed.close()
        finally:
            if registry_view is not None:
                await registry_view.close()

    execute(ctx, body)
