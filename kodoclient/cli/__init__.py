"""The `kodoclient` command (alias `koco`): the global options and the command table.

Each command lives in a module of its own in this package; `main` only gathers them.
"""

from __future__ import annotations

from pathlib import Path

import click

from kodoclient.cli import exit_codes
from kodoclient.cli.a2a import a2a_group
from kodoclient.cli.alerts import alerts
from kodoclient.cli.cancel import cancel
from kodoclient.cli.context import CliState, Settings
from kodoclient.cli.contracts import quote, receipt
from kodoclient.cli.files import download, files
from kodoclient.cli.flows import flows
from kodoclient.cli.gateway import gateway
from kodoclient.cli.group import group
from kodoclient.cli.holds import hold
from kodoclient.cli.input import input_
from kodoclient.cli.launch import launch
from kodoclient.cli.ledger import balance, budget, credit, ledger
from kodoclient.cli.login import login
from kodoclient.cli.ls import ls
from kodoclient.cli.market import market
from kodoclient.cli.node import node as node_command
from kodoclient.cli.nodes import nodes
from kodoclient.cli.peers import peers
from kodoclient.cli.pki import pki
from kodoclient.cli.rerun import rerun
from kodoclient.cli.result import result
from kodoclient.cli.run import run
from kodoclient.cli.status import status
from kodoclient.cli.timeline import timeline
from kodoclient.cli.top import top
from kodoclient.cli.usage import usage
from kodoclient.cli.user import user
from kodoclient.cli.validate import validate
from kodoclient.cli.verify import verify
from kodoclient.cli.watch import watch
from kodoclient.cli.watch_registry import watch_registry
from kodoclient.cli.whoami import whoami
from kodoclient.config import DEFAULT_CALL_TIMEOUT
from kodosumi import __version__

_EPILOG = (
    "\b\nThe node: --node, else $KODOSUMI_NODE, else your login's default node (koco\n"
    "nodes use NODE), else the node.json of a node running from --state-dir (default\n"
    "$KODOSUMI_HOME or the per-user data dir), else 127.0.0.1:7470.\n"
    "Credentials: --ca/--cert/--key, else your login, else the development files a\n"
    "local node wrote under <state-dir>/pki; plaintext only with --insecure\n"
    "($KODOSUMI_INSECURE=1).\n"
    "\n\b\nExit codes:\n" + exit_codes.help_table()
)

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_EPILOG,
)
@click.option("--node", metavar="HOST:PORT", help="Address of the node to talk to.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The local node's state directory (node.json, pki/).",
)
@click.option("--insecure", is_flag=True, help="Plaintext, no TLS (the node must allow it).")
@click.option("--ca", type=_FILE, help="CA certificate (PEM) that signed the node's cert.")
@click.option("--cert", type=_FILE, help="Client certificate (PEM); needs --key.")
@click.option("--key", type=_FILE, help="Client private key (PEM); needs --cert.")
@click.option(
    "--json", "json_output", is_flag=True, help="Machine output: one JSON object per line."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_CALL_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Deadline of each call to the node (streams excepted).",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Streams (watch, run, alerts -f, watch-registry) reconnect forever after a break; "
    "give up (exit 4) after this many seconds without reaching the node or registry.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also show streamed chunks and tracebacks.")
@click.version_option(__version__, prog_name="kodoclient")
@click.pass_context
def main(
    ctx: click.Context,
    node: str | None,
    state_dir: Path | None,
    insecure: bool,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    json_output: bool,
    timeout: float,
    give_up_after: float | None,
    verbose: bool,
) -> None:
    """Run and watch agentic flows on a kodosumi node."""
    state = ctx.ensure_object(CliState)
    state.settings = Settings(
        node=node,
        state_dir=state_dir,
        insecure=insecure,
        ca=ca,
        cert=cert,
        key=key,
        json=json_output,
        timeout=timeout,
        verbose=verbose,
        give_up_after=give_up_after,
    )


for _command in (
    run,
    flows,
    launch,
    watch,
    status,
    result,
    rerun,
    ls,
    cancel,
    input_,
    node_command,
    validate,
):
    main.add_command(_command)

# Files in and out of runs (docs/files.md).
for _command in (files, download):
    main.add_command(_command)

# The network: the registry and the node's peers (docs/registry.md, docs/operations.md).
for _command in (nodes, peers, watch_registry):
    main.add_command(_command)

# Identity and authorization (docs/security.md).
for _command in (pki, user, group, login, whoami, verify, gateway):
    main.add_command(_command)

# Contracts: quotes and receipts (docs/market.md).
for _command in (quote, receipt):
    main.add_command(_command)

# The market (docs/market.md): metered usage, the market view.
for _command in (usage, market):
    main.add_command(_command)

# Budgets and settlement (docs/market.md).
for _command in (balance, ledger, budget, credit, hold):
    main.add_command(_command)

# A2A 1.0 (docs/a2a.md).
main.add_command(a2a_group)

# Observability (docs/observability.md).
for _command in (timeline, alerts, top):
    main.add_command(_command)

__all__ = ["main"]
