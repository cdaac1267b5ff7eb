"""`koco verify`: check badges, quotes and receipts offline against the trust domain's CA
certificate.

Give badge tokens (or `@FILE`), quote.json / receipt.json files (`koco quote -o`, `koco
receipt -o`; a path or `@FILE`, checked by `contract_files.check_contract`), or `--node`
(and `--flow`) to fetch the badges the auth provider lists for them; either way the
signature is checked here, with the CA certificate only (`--ca`, else the one of your
identity). Anything that does not verify exits 5. A service-level badge shows its level and the
measurements behind it. `--online` also asks the registry whether a badge was revoked (the
offline check cannot know; the badge's short validity bounds that).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from cryptography import x509

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, registry_option
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.contract_files import check_contract, is_contract
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.errors import ConfigError
from kodoclient.identity import identity_files
from kodosumi.badges import Badge, BadgeError, read_badge, verify_badge
from kodosumi.tls import dev_client_files
from kodosumi.v1 import auth_pb2 as pb


def ca_of(state: CliState) -> x509.Certificate:
    candidates = [state.settings.ca] if state.settings.ca else []
    candidates += [identity_files(state.settings.state).ca_cert]
    candidates += [dev_client_files(state.settings.state).ca_cert]
    for path in candidates:
        if path is not None and path.is_file():
            return x509.load_pem_x509_certificate(path.read_bytes())
    raise ConfigError("no CA certificate: pass --ca FILE", reason="NO_CREDENTIALS")


def measurements(badge: Badge) -> list[str]:
    """The lines a service-level badge adds: what was measured, and what its level needs."""
    facts = badge.facts
    if "level" not in facts:
        return []
    lines = [
        f"  measured over {facts.get('window_seconds', 0):g} s: {facts.get('runs', 0)} runs, "
        f"{facts.get('successes', 0)} succeeded, {facts.get('failures', 0)} failed, "
        f"success {float(facts.get('success_rate', 0)):.1%}, "
        f"p50 {facts.get('p50_seconds', 0):g} s, p95 {facts.get('p95_seconds', 0):g} s, "
        f"availability {float(facts.get('availability', 0)):.3%}"
    ]
    criteria = facts.get("criteria") or {}
    needs = [
        f"success_rate >= {criteria['success_rate']:g}" if "success_rate" in criteria else "",
        f"p95 <= {criteria['p95_seconds']:g} s" if "p95_seconds" in criteria else "",
        f"availability >= {criteria['availability']:g}" if "availability" in criteria else "",
        f"runs >= {criteria['min_runs']}" if "min_runs" in criteria else "",
    ]
    lines.append(f"  {facts['level']} needs: " + ", ".join(n for n in needs if n))
    return lines


def _read(token: str) -> str:
    if token.startswith("@"):
        return Path(token[1:]).read_text().strip()
    if token.endswith(".json") and Path(token).is_file():
        return Path(token).read_text().strip()
    return token


@click.command("verify")
@click.argument("badges", nargs=-1, metavar="[BADGE|@FILE|FILE.json]...")
@click.option("--node", "node_id", default="", help="Fetch and check this node's badges.")
@click.option("--flow", default="", help="Only badges about this flow.")
@click.option(
    "--online", is_flag=True, help="Also ask the registry whether each badge was revoked."
)
@registry_option
@json_option
@click.pass_context
def verify(
    ctx: click.Context,
    badges: tuple[str, ...],
    node_id: str,
    flow: str,
    online: bool,
    registry: str | None,
) -> None:
    """Verify badges, quotes and receipts offline with the CA certificate (exit 5 if one
    does not verify)."""
    state = state_of(ctx)
    if not badges and not node_id:
        raise click.UsageError("give badge tokens, quote/receipt files or --node")

    async def body() -> ExitCode:
        ca = ca_of(state)
        code = exit_codes.OK
        tokens = []
        for given in badges:
            text = _read(given)
            if not is_contract(text):
                tokens.append(text)
            elif not check_contract(state, text, given, ca):
                code = exit_codes.DENIED
        if node_id:
            async with auth_client(state, registry) as client:
                response = await client.call(
                    "ListBadges", pb.ListBadgesRequest(node_id=node_id, flow=flow)
                )
            tokens += [b.token for b in response.badges]
            if not response.badges:
                state.note(f"no badges for {node_id}{'/' + flow if flow else ''}")
        revoked: dict[str, str] = {}
        if online and tokens:
            revoked = await _revocations(state, registry, tokens)
        for token in tokens:
            try:
                badge = verify_badge(token, ca)
                if badge.badge_id in revoked:
                    raise BadgeError(f"revoked by the registry: {revoked[badge.badge_id]}")
            except BadgeError as e:
                code = exit_codes.DENIED
                if state.settings.json:
                    state.emit({"valid": False, "error": str(e)})
                else:
                    state.out.print(f"INVALID: {e}", style="red", highlight=False)
                continue
            expires = dt.datetime.fromtimestamp(badge.expires_at, dt.UTC).isoformat()
            if state.settings.json:
                state.emit(
                    {
                        "valid": True,
                        "kind": badge.kind,
                        "subject": badge.subject,
                        "expires": expires,
                        "badge_id": badge.badge_id,
                        "level": str(badge.facts.get("level", "")),
                        "facts": badge.facts,
                    }
                )
            elif "level" in badge.facts:
                state.out.print(
                    f"valid {badge.kind} badge {badge.facts['level']} for {badge.subject} "
                    f"(until {expires})",
                    highlight=False,
                )
                for line in measurements(badge):
                    state.out.print(line, highlight=False)
            else:
                facts = ", ".join(f"{k}={v}" for k, v in sorted(badge.facts.items()))
                state.out.print(
                    f"valid {badge.kind} for {badge.subject} (until {expires}): {facts}",
                    highlight=False,
                )
        return code

    execute(ctx, body)


async def _revocations(state: CliState, registry: str | None, tokens: list[str]) -> dict[str, str]:
    """Badge id -> revocation reason, for the badges among `tokens` the registry revoked."""
    ids = set()
    for token in tokens:
        try:
            ids.add(read_badge(token).badge_id)
        except BadgeError:
            continue  # reported as invalid below
    revoked: dict[str, str] = {}
    async with auth_client(state, registry) as client:
        for badge_id in sorted(i for i in ids if i):
            response = await client.call(
                "ListBadges", pb.ListBadgesRequest(badge_id=badge_id, include_revoked=True)
            )
            for listed in response.badges:
                if listed.HasField("revoke_time"):
                    revoked[listed.badge_id] = listed.revoke_reason or "revoked"
    return revoked
