"""Clients on other hosts (issue 12): `koco login` keeps a default node from the registry's
list (or `--node`), `koco nodes use NODE` switches it, and with a login `koco run` never
starts a local node unasked — an entrypoint the node lacks is FLOW_NOT_FOUND naming
`--embedded`. All real: a registry with its auth provider, two nodes enrolled with `--join`
tokens, Ray, mTLS; the CLI is the real `koco` (click) with only a state directory."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kodoclient.auth import RegistryTarget
from kodoclient.cli import main
from kodoclient.cli.context import CliState
from kodoclient.identity import read_login
from kodoclient.registry import RegistryClient
from kodosumi.authz import Principal
from kodosumi.spiffe import SpiffeId
from kodosumid.app import NodeApp
from kodosumid.auth.identity import join
from kodosumid.config import DiscoveryConfig, PoolConfig
from registryd.clock import ManualClock
from registryd.config import AuthConfig
from registryd.daemon import RegistryDaemon
from tests.auth.conftest import ADMIN, DOMAIN
from tests.node.conftest import node_config
from tests.node.helpers import eventually
from tests.registry.conftest import make_pki, registry_config

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# A stand-in for kodosumid that must never be started here.
NEVER = ("/bin/false",)


@dataclass
class Net:
    registry: RegistryDaemon
    nodes: dict[str, NodeApp]

    async def user_token(self, name: str) -> str:
        assert self.registry.auth is not None
        admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin", "user"}))
        _, token = await self.registry.auth.provider.create_user(admin, name, (), ())
        return str(token)


@pytest.fixture(scope="module")
async def net(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Net]:
    base = tmp_path_factory.mktemp("net")
    pki = make_pki(base / "pki", DOMAIN)
    config = replace(registry_config(base / "registry", pki), auth=AuthConfig(admins=(ADMIN,)))
    registry = RegistryDaemon(config, clock=ManualClock(time.time()), run_sweeper=False)
    await registry.start()
    assert registry.auth is not None
    nodes: dict[str, NodeApp] = {}
    try:
        admin = Principal(SpiffeId.user(DOMAIN, ADMIN), frozenset({"admin"}))
        for node_id in ("node-a", "node-b"):
            token, _ = await registry.auth.provider.create_token(
                admin, SpiffeId.node(DOMAIN, node_id)
            )
            conf = node_config(
                base / node_id,
                node_id="",
                discovery=DiscoveryConfig(enabled=False),
                pool=PoolConfig(shared_executors=1, warm_executors=0, preload_modules=()),
            )
            app = NodeApp(await join(conf, token))
            await app.start()
            nodes[node_id] = app
        found = Net(registry, nodes)

        async def both_online() -> bool:
            async with RegistryClient(RegistryTarget(registry.address, pki.user(ADMIN))) as r:
                return len((await r.list_nodes(states=["online"])).nodes) == 2

        await eventually(both_online)
        yield found
    finally:
        for app in nodes.values():
            await app.stop()
        await registry.stop(grace=0)


async def koco(state_dir: Path, *args: str) -> Result:
    """The real CLI in a thread; it may never start an embedded node (NEVER)."""

    def invoke() -> Result:
        return CliRunner().invoke(
            main,
            ["--state-dir", str(state_dir), "--timeout", "5", *args],
            obj=CliState(node_command=NEVER),
            catch_exceptions=False,
        )

    return await asyncio.to_thread(invoke)


async def test_login_keeps_a_default_node_and_nodes_use_switches_it(
    net: Net, tmp_path: Path
) -> None:
    me = tmp_path / "laptop"
    login = await koco(me, "login", await net.user_token("lena"))
    assert login.exit_code == 0, login.output
    assert "default node: node-a" in login.stderr  # the first online node by id
    profile = read_login(me)
    assert profile is not None and profile.node_id == "node-a"
    assert profile.node_address == net.nodes["node-a"].address

    # No --node, no $KODOSUMI_NODE, no local node: the login's node answers.
    node = await koco(me, "--json", "node")
    assert node.exit_code == 0, node.output
    assert json.loads(node.stdout)["node_id"] == "node-a"

    switched = await koco(me, "nodes", "use", "node-b")
    assert switched.exit_code == 0, switched.output
    assert json.loads((await koco(me, "--json", "node")).stdout)["node_id"] == "node-b"
    ran = await koco(me, "run", "hello", "-i", "name=remote")
    assert ran.exit_code == 0, ran.output
    assert f"on {net.nodes['node-b'].address}" in ran.stderr
    assert "hello remote" in ran.stdout

    # A node the registry never knew: NOT_FOUND, and the choice stays as it was.
    unknown = await koco(me, "nodes", "use", "node-zz")
    assert unknown.exit_code == 3
    assert read_login(me).node_id == "node-b"  # type: ignore[union-attr]


async def test_login_with_node_names_it(net: Net, tmp_path: Path) -> None:
    me = tmp_path / "desk"
    login = await koco(me, "login", await net.user_token("nils"), "--node", "node-b")
    assert login.exit_code == 0, login.output
    assert read_login(me).node_id == "node-b"  # type: ignore[union-attr]


async def test_with_a_login_run_never_starts_a_local_node_unasked(net: Net, tmp_path: Path) -> None:
    me = tmp_path / "remote"
    assert (await koco(me, "login", await net.user_token("rita"))).exit_code == 0
    # An entrypoint the node does not offer: FLOW_NOT_FOUND, and the way to run it locally.
    missing = await koco(me, "run", "tests.flowlib:ticking")
    assert missing.exit_code == 3, missing.output
    assert "koco run --embedded tests.flowlib:ticking" in missing.stderr
    assert "starting an embedded node" not in missing.stderr
    # The default node is down: an error, not a local node in its stead.
    assert (await koco(me, "nodes", "use", "127.0.0.1:9")).exit_code == 0
    down = await koco(me, "--timeout", "2", "run", "hello")
    assert down.exit_code == 4, down.output
    assert "not starting a local node" in down.stderr
    assert "starting an embedded node" not in down.stderr


async def test_a_short_id_never_reaches_another_users_execution(net: Net, tmp_path: Path) -> None:
    mia, otto = tmp_path / "mia", tmp_path / "otto"
    for who, state in (("mia", mia), ("otto", otto)):
        login = await koco(state, "login", await net.user_token(who), "--node", "node-b")
        assert login.exit_code == 0, login.output
    ran = await koco(mia, "--json", "run", "hello", "-i", "name=mine")
    execution_id = json.loads(ran.stdout.splitlines()[0])["execution_id"]
    assert (await koco(mia, "status", execution_id[:8])).exit_code == 0
    # Prefixes resolve only among the caller's own executions: nothing matched, nothing named.
    theirs = await koco(otto, "status", execution_id[:8])
    assert theirs.exit_code == 3, theirs.output
    assert execution_id not in theirs.output
    assert (await koco(otto, "cancel", execution_id[:8])).exit_code == 3
