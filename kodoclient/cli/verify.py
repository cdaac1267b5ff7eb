"""`koco verify`: check badges offline against the trust domain's CA certificate.

Give badge tokens (or `@FILE`), or `--node` (and `--flow`) to fetch the badges the auth
provider lists for them; either way the signature is checked here, with the CA certificate
only (`--ca`, else the one of your identity).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from cryptography import x509

from kodoclient.cli import exit_codes
from kodoclient.cli.auth_options import auth_client, registry_option
from kodoclient.cli.context import CliState, execute, state_of
from kodoclient.cli.exit_codes import ExitCode
from kodoclient.cli.options import json_option
from kodoclient.errors import ConfigError
from kodoclient.identity import identity_files
from kodosumi.badges import BadgeError, verify_badge
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


def _read(token: str) -> str:
    return Path(token[1:]).read_text().strip() if token.startswith("@") else token


@click.command("verify")
@click.argument("badges", nargs=-1, metavar="[BADGE|@FILE]...")
@click.option("--node", "node_id", default="", help="Fetch and check this node's badges.")
@click.option("--flow", default="", help="Only badges about this flow.")
@registry_option
@json_option
@click.pass_context
def verify(
    ctx: click.Context, badges: tuple[str, ...], node_id: str, flow: str, registry: str | None
) -> None:
    """Verify badges offline with the CA certificate (exit 5 if one does not verify)."""
    state = state_of(ctx)
    if not badges and not node_id:
        raise click.UsageError("give badge tokens or --node")

    async def body() -> ExitCode:
        ca = ca_of(state)
        tokens = [_read(b) for b in badges]
        if node_id:
            async with auth_client(state, registry) as client:
                response = await client.call(
                    "ListBadges", pb.ListBadgesRequest(node_id=node_id, flow=flow)
                )
            tokens += [b.token for b in response.badges]
            if not response.badges:
                state.note(f"no badges for {node_id}{'/' + flow if flow else ''}")
        code = exit_codes.OK
        for token in tokens:
            try:
                badge = verify_badge(token, ca)
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
                        "facts": badge.facts,
                    }
                )
            else:
                facts = ", ".join(f"{k}={v}" for k, v in sorted(badge.facts.items()))
                state.out.print(
                    f"valid {badge.kind} for {badge.subject} (until {expires}): {facts}",
                    highlight=False,
                )
        return code

    execute(ctx, body)
