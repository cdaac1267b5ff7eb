"""`koco run FLOW`: launch, follow live, print the result; bring a node along if needed.

When no node is reachable at an address the user did not name, `run` starts an embedded
node for the length of the command. When FLOW is an entrypoint the reachable (local) node
does not have in its catalog, it starts an embedded node with `--flow FLOW` beside it.
Never unasked when the user chose the node (`--node`, `$KODOSUMI_NODE`, a login's default
node) or logged in with a registry: then a missing flow is FLOW_NOT_FOUND naming
`--embedded`, and an unreachable node is an error.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import click
import grpc
from opentelemetry import trace

from kodoclient._async import AsyncClient
from kodoclient.cli import exit_codes
from kodoclient.cli.context import CliState, Settings, execute, state_of
from kodoclient.cli.embedded import embedded_node
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.file_transfer import (
    files_option,
    parse_file_refs,
    say_outputs,
    upload_inputs,
)
from kodoclient.cli.flowref import looks_like_entrypoint, match_flow
from kodoclient.cli.follow import follow
from kodoclient.cli.options import inputs_from, inputs_options, json_option
from kodoclient.cli.run_quote import QuoteChoice, parse_max_cost, quote_for_run
from kodoclient.config import NODE_ENV, live_node_file
from kodoclient.errors import ConfigError, KodoclientError
from kodoclient.files import FileCorrupted
from kodoclient.identity import read_login
from kodosumi.telemetry.names import EXECUTION_ID
from kodosumi.v1 import flow_pb2


async def reach(settings: Settings) -> tuple[AsyncClient | None, KodoclientError | None]:
    """A client of a node that answers, or None and why there is none.

    Errors other than "nobody there" (bad flags, a refusing node) are raised.
    """
    try:
        config = settings.connect_config()
    except ConfigError as e:
        if e.reason != "NO_CREDENTIALS":
            raise
        return None, e
    client = AsyncClient(config)
    try:
        # A short probe: the point is to decide quickly whether to bring a node along.
        await client.node_info(call_timeout=min(3.0, settings.timeout))
    except KodoclientError as e:
        await client.close()
        if exit_codes.for_error(e) is not exit_codes.UNREACHABLE:
            raise
        return None, e
    return client, None


def _named_target(settings: Settings) -> bool:
    """Whether the user chose the node (flag, env, the login's default node) or works with
    a registry (a login profile): then never start a local one unasked (`--embedded`)."""
    if settings.node or os.environ.get(NODE_ENV):
        return True
    login = read_login(settings.state)
    return login is not None and bool(login.registry_address or login.node_address)


def _embedded_state_dir(settings: Settings) -> Path | None:
    """The state dir for an embedded node: the user's, unless a live node already owns it."""
    if live_node_file(settings.state) is not None:
        return None  # a temporary one
    return settings.state


async def _start_embedded(
    stack: AsyncExitStack, state: CliState, flow_ref: str, state_dir: Path | None
) -> AsyncClient:
    settings = state.settings
    flows = [flow_ref] if looks_like_entrypoint(flow_ref) else []
    where = state_dir if state_dir is not None else "a temporary directory"
    state.note(f"starting an embedded node (state in {where})…")
    node = await stack.enter_async_context(
        embedded_node(
            state_dir=state_dir,
            flows=flows,
            insecure=settings.insecure,
            call_timeout=settings.timeout,
            command=state.node_command,
        )
    )
    state.note(f"embedded node {node.node_id or node.pid} serving on {node.config.target}")
    return await stack.enter_async_context(AsyncClient(node.config))


def _not_found(flow_ref: str, client: AsyncClient, catalog: list[flow_pb2.Flow]) -> KodoclientError:
    known = ", ".join(sorted(f.name for f in catalog)) or "none"
    local = (
        f"; to run it on a local embedded node instead: koco run --embedded {flow_ref}"
        if looks_like_entrypoint(flow_ref)
        else ""
    )
    return KodoclientError(
        grpc.StatusCode.NOT_FOUND,
        f"no flow {flow_ref!r} on {client.config.target} (known: {known}){local}",
        reason="FLOW_NOT_FOUND",
    )


async def run_flow(
    state: CliState,
    flow_ref: str,
    inputs: dict[str, Any],
    embedded: bool | None,
    file_refs: dict[str, str | Path] | None = None,
    download_dir: Path | None = None,
    choice: QuoteChoice | None = None,
) -> ExitCode:
    settings = state.settings
    named = _named_target(settings)
    async with AsyncExitStack() as stack:
        client: AsyncClient | None = None
        if embedded is not True:
            client, why = await reach(settings)
            if client is not None:
                stack.push_async_callback(client.close)
            elif embedded is False or named:
                assert why is not None
                if embedded is None and not settings.node and not os.environ.get(NODE_ENV):
                    state.note(
                        "not starting a local node: you work with a registry (koco login); "
                        "`koco run --embedded` runs on a local embedded node"
                    )
                raise why
        started_embedded = client is None
        if client is None:
            client = await _start_embedded(stack, state, flow_ref, _embedded_state_dir(settings))
        catalog = await client.list_flows()
        flow = match_flow(catalog, flow_ref)
        if flow is None and not started_embedded and embedded is not False:
            # A node the user chose (or any node, once they work with a registry) is never
            # replaced by a local one unasked: FLOW_NOT_FOUND, naming --embedded.
            if not looks_like_entrypoint(flow_ref) or named:
                raise _not_found(flow_ref, client, catalog)
            state.note(f"{flow_ref} is not in the catalog of {client.config.target}")
            # The reachable node owns the default state dir: the embedded one gets its own.
            client = await _start_embedded(stack, state, flow_ref, None)
            catalog = await client.list_flows()
            flow = match_flow(catalog, flow_ref)
        if flow is None:
            raise _not_found(flow_ref, client, catalog)
        files = await upload_inputs(state, client, file_refs or {})
        quote_id = await quote_for_run(state, client, flow, inputs, choice or QuoteChoice())
        execution = await client.launch(flow.name, inputs, files=files, quote_id=quote_id)
        # The command's span (when koco traces) names the run it made.
        trace.get_current_span().set_attribute(EXECUTION_ID, execution.execution_id)
        state.note(f"launched {flow.name} as {execution.execution_id} on {client.config.target}")
        view = await follow(
            state, client, execution.execution_id, flow=flow.name, answer_inputs=True
        )
        try:
            await say_outputs(state, client, execution.execution_id, download_dir)
        except (KodoclientError, FileCorrupted) as e:
            state.note(f"could not list or save the output files: {e}")
        return exit_codes.for_execution_status(view.status)


@click.command("run")
@click.argument("flow")
@inputs_options
@files_option
@click.option(
    "--download",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save the run's output files into this folder once it ends.",
)
@click.option(
    "--embedded/--no-embedded",
    default=None,
    help="Always / never start an embedded node. Default: only without a login or a "
    "named node, when no node is reachable or FLOW is an entrypoint the local node lacks.",
)
@click.option("--quote", "quote_id", default="", help="Launch with this quote (koco quote).")
@click.option(
    "--max-cost",
    metavar="AMOUNT",
    help="Quote first and launch only if the quote's ceiling is at most AMOUNT.",
)
@click.option("--max-seconds", type=float, default=0.0, help="With --max-cost: run-time limit.")
@click.option("--max-tokens", type=int, default=0, help="With --max-cost: LLM token limit.")
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    flow: str,
    assignments: tuple[str, ...],
    inputs_json: str | None,
    file_refs: tuple[str, ...],
    download_dir: Path | None,
    embedded: bool | None,
    quote_id: str,
    max_cost: str | None,
    max_seconds: float,
    max_tokens: int,
) -> None:
    """Launch FLOW, follow it live and print its result; exit with its outcome.

    FLOW is a catalog name (`hello`) or an entrypoint: `module:attr`, a dotted path
    (`flows.serviceplan.Search`) or a YAML crew spec (`./assets/search.yaml`). Input
    requests are asked at the terminal when stdin is one. `-f NAME=@PATH` uploads a file
    the flow reads as ctx.files[NAME]; its output files are listed at the end (or saved
    with --download DIR).
    """
    state = state_of(ctx)
    inputs = inputs_from(assignments, inputs_json)
    refs = parse_file_refs(file_refs)
    if quote_id and max_cost is not None:
        raise click.UsageError("give --quote or --max-cost, not both")
    choice = QuoteChoice(quote_id, parse_max_cost(max_cost), max_seconds, max_tokens)
    execute(ctx, lambda: run_flow(state, flow, inputs, embedded, refs, download_dir, choice))
