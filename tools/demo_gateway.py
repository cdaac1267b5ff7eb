"""`make demo-gateway`: a flow bought over MIP-003 with curl.

1. Starts a node (`kodosumid`, embedded Ray, its development CA) offering the example flows.
2. Issues the gateway's certificate (`spiffe://<domain>/gateway/demo`) from that CA, writes a
   `gateway.toml` selling `hello` at `/hello` (free: no payment backend needed), and starts
   `kodogate`.
3. Runs `curl` against it: availability, input_schema, start_job, then status until the job
   is completed, printing each command and its answer.
4. Stops both with SIGTERM (also on Ctrl-C or a failure).

Logs go to `<home>/logs/`. `--home DIR` (default .state/demo-gateway); `--keep-running`
leaves both up until Ctrl-C. `make demo-market` can call it for its MIP-003 step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kodosumi.pki import CertificateAuthority, cert_pem, key_pem, write_private, write_public  # noqa: E402
from kodosumi.spiffe import SpiffeId  # noqa: E402
from kodosumi.tls import pki_dir  # noqa: E402
from tools.demo_network_daemons import DemoError, json_field  # noqa: E402

BIN = Path(sys.executable).parent


def wait_for(what: str, check: object, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return str(value)
        time.sleep(0.2)
    raise DemoError(f"{what} did not come up in {timeout:.0f} s")


def curl(*args: str, show: bool = True) -> dict[str, object]:
    out = subprocess.run(["curl", "-s", *args], capture_output=True, text=True, check=True)
    answer: dict[str, object] = json.loads(out.stdout)
    if show:
        shown = " ".join(a if " " not in a and "{" not in a else f"'{a}'" for a in args)
        print(f"\n$ curl -s {shown}\n{json.dumps(answer, indent=2)}", flush=True)
    return answer


def write_identity(ca: CertificateAuthority, folder: Path, gateway_id: str) -> None:
    """The gateway's certificate from `ca`, where kodogate looks for it (<state>/identity)."""
    cert, key = ca.issue(SpiffeId.gateway(ca.trust_domain, gateway_id))
    folder.mkdir(parents=True)
    write_public(folder / "ca.pem", cert_pem(ca.cert))
    write_public(folder / "cert.pem", cert_pem(cert))
    write_private(folder / "key.pem", key_pem(key))


def gateway_toml(state: Path, node_id: str, address: str, tail: list[str]) -> str:
    """A kodogate config for gateway `demo` calling node `node_id`; `tail`: payments, services."""
    head = [
        "[gateway]",
        'id = "demo"',
        'listen = "127.0.0.1:0"',
        f'state_dir = "{state}"',
        f"[nodes.{node_id}]",
        f'address = "{address}"',
        f'node_id = "{node_id}"',
    ]
    return "\n".join([*head, *tail, ""])


def buy(url: str, body: dict[str, object], token: str = "", timeout: float = 120.0) -> str:
    """Buy a job of the service at `url` with curl: availability, input_schema, start_job,
    then status until the job ends (each state once). Returns the job's last status."""
    auth = ("-H", f"token: {token}") if token else ()
    curl(f"{url}/availability")
    curl(f"{url}/input_schema")
    start = ("-X", "POST", f"{url}/start_job", "-H", "content-type: application/json", *auth)
    job = curl(*start, "-d", json.dumps(body))
    if "id" not in job:
        raise DemoError(f"start_job was refused: {job}")
    deadline = time.monotonic() + timeout
    seen = ""
    while True:
        status = curl(f"{url}/status?job_id={job['id']}", show=False)
        if status["status"] != seen:  # each state once
            seen = str(status["status"])
            curl(f"{url}/status?job_id={job['id']}")
        if seen in ("completed", "failed"):
            return seen
        if time.monotonic() > deadline:
            raise DemoError(f"the job did not end in {timeout:.0f} s")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".state" / "demo-gateway")
    parser.add_argument("--keep-running", action="store_true")
    options = parser.parse_args()
    home: Path = options.home.resolve()
    shutil.rmtree(home, ignore_errors=True)
    (home / "logs").mkdir(parents=True)
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def spawn(name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (home / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=log, stderr=log)
        processes.append((process, log))
        return process

    try:
        node_state = home / "node"
        print("starting a node (embedded Ray) ...", flush=True)
        spawn("kodosumid", "kodosumid", "--state-dir", str(node_state), "--listen",
              "127.0.0.1:0", "--no-lan", "--node-id", "seller")  # fmt: skip
        address = wait_for("the node", lambda: json_field(node_state / "node.json", "address"))
        ca = CertificateAuthority.load(
            pki_dir(node_state) / "ca.pem", pki_dir(node_state) / "ca.key"
        )
        write_identity(ca, home / "gateway" / "identity", "demo")
        config = home / "gateway.toml"
        services = ["[payments]", 'backend = "free"', "[[services]]", 'path = "hello"',
                    'flow = "hello"', 'name = "Hello"']  # fmt: skip
        config.write_text(gateway_toml(home / "gateway", "seller", address, services))
        print(f"node at {address}; starting kodogate ...", flush=True)
        spawn("kodogate", "kodogate", "serve", "--config", str(config))
        url = wait_for("kodogate", lambda: json_field(home / "gateway" / "gateway.json", "url"))
        print(f"kodogate at {url}", flush=True)
        body: dict[str, object] = {
            "identifier_from_purchaser": "demo-0001",
            "input_data": {"name": "MIP-003"},
        }
        status = buy(f"{url}/hello", body)
        if options.keep_running:
            print("\nrunning; Ctrl-C stops both", flush=True)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0 if status == "completed" else 1
    except (DemoError, subprocess.CalledProcessError) as e:
        print(f"demo-gateway: {e}", file=sys.stderr)
        return 1
    finally:
        for process, log in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


if __name__ == "__main__":
    sys.exit(main())
