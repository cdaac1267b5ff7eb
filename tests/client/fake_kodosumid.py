"""A stand-in for `python -m kodosumid` that `koco run` can start as its embedded node.

It takes the daemon's flags (--state-dir, --listen, --insecure, --flow), serves the
scripted node over mTLS with a development PKI (or plaintext), writes node.json once it
serves and removes it on SIGTERM, as the real daemon does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_node import FakeNode, hello_script

from kodosumi.tls import ensure_dev_pki
from kodosumi.v1 import flow_pb2


def flow_name(entrypoint: str) -> str:
    stem = entrypoint.rsplit("/", 1)[-1]
    return stem.removesuffix(".yaml").replace(":", ".")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--flow", action="append", default=[])
    parser.add_argument("--lan", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = FakeNode(node_id="embedded-fake")
    for entrypoint in args.flow:
        name = flow_name(entrypoint)
        node.flows.append(flow_pb2.Flow(name=name, entrypoint=entrypoint))
        node.scripts[name] = hello_script
    tls = None
    if not args.insecure:
        node_files, _, _ = ensure_dev_pki(args.state_dir, node.node_id)
        tls = node_files.read()
    node.start(int(args.listen.rpartition(":")[2]), tls)
    info = {
        "address": node.address,
        "node_id": node.node_id,
        "insecure": args.insecure,
        "pid": os.getpid(),
        "identity": "",
    }
    target = args.state_dir / "node.json"
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(info))
    partial.replace(target)
    print(f"serving on {node.address}", flush=True)
    stop.wait()
    target.unlink(missing_ok=True)
    node.close()


if __name__ == "__main__":
    main()
