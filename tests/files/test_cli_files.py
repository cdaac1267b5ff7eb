"""`koco run -f NAME=@PATH`, `koco files`, `koco download` (resumed) and `run --download`
against a real node (gRPC + mTLS, Ray, SQLite)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kodoclient.cli import main
from tests.files.conftest import USER_MAX_FILE
from tests.node.conftest import RunningNode
from tests.node.users import User

pytestmark = [pytest.mark.ray]


async def koco(node: RunningNode, *args: str) -> Result:
    options = ["--node", node.app.address, "--state-dir", str(node.app.config.state_dir)]
    return await asyncio.to_thread(
        CliRunner().invoke, main, [*options, *args], catch_exceptions=False
    )


async def test_run_uploads_launches_and_says_where_outputs_are(
    files_node: RunningNode, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nfirst point\nsecond point\n")
    result = await koco(files_node, "run", "summarize-file", "-f", f"document=@{notes}")
    assert result.exit_code == 0, result.output
    assert "uploaded" in result.output and "SUCCEEDED" in result.output
    match = re.search(r"koco download (\w+) summary.md", result.output)
    assert match, result.output
    execution_id = match.group(1)

    listed = await koco(files_node, "--json", "files", execution_id[:8])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [(r["direction"], r["name"]) for r in rows] == [
        ("in", "document"),
        ("out", "summary.md"),
    ]

    # An interrupted download (a .part left behind) resumes; the result checks out.
    whole = tmp_path / "whole.md"
    got = await koco(files_node, "download", execution_id, "summary.md", "-o", str(whole))
    assert got.exit_code == 0, got.output
    content = whole.read_bytes()
    assert b"Summary of notes.md" in content
    resumed = tmp_path / "resumed.md"
    (tmp_path / "resumed.md.part").write_bytes(content[:10])
    again = await koco(files_node, "download", execution_id, rows[1]["file_id"], "-o", str(resumed))
    assert again.exit_code == 0, again.output
    assert resumed.read_bytes() == content
    assert not (tmp_path / "resumed.md.part").exists()

    missing = await koco(files_node, "download", execution_id, "nope.txt")
    assert missing.exit_code == 3
    assert "summary.md" in missing.output


async def test_run_download_saves_the_outputs(files_node: RunningNode, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    out = tmp_path / "out"
    result = await koco(
        files_node, "run", "file-echo", "-f", f"blob=@{data}", "--download", str(out)
    )
    assert result.exit_code == 0, result.output
    assert (out / "blob.out").read_bytes() == data.read_bytes()
    assert "saved blob.out" in result.output


async def test_bad_file_arguments_are_usage_errors(files_node: RunningNode, tmp_path: Path) -> None:
    for ref in ("document", f"document=@{tmp_path / 'missing.txt'}", "document=not-an-id"):
        result = await koco(files_node, "run", "summarize-file", "-f", ref)
        assert result.exit_code == 2, (ref, result.output)
    unknown = await koco(files_node, "run", "summarize-file", "-f", "document=" + "0" * 32)
    assert unknown.exit_code == 3, unknown.output


async def test_an_upload_over_a_file_quota_exits_7_naming_it(
    files_node: RunningNode, tmp_path: Path
) -> None:
    erin = User(files_node, "erin-files")
    try:
        pem = {"ca": erin.tls.ca_cert, "cert": erin.tls.cert, "key": erin.tls.key}
        for name, data in pem.items():
            (tmp_path / f"{name}.pem").write_bytes(data)
        big = tmp_path / "big.bin"
        big.write_bytes(b"\x07" * (USER_MAX_FILE + 1))
        options = [f"--{name}={tmp_path / f'{name}.pem'}" for name in pem]
        args = ["--node", files_node.app.address, *options, "run", "file-echo", "-f"]
        result = await asyncio.to_thread(
            CliRunner().invoke, main, [*args, f"blob=@{big}"], catch_exceptions=False
        )
        assert result.exit_code == 7, result.output
        assert "max_file_bytes" in result.output and f"limit {USER_MAX_FILE}" in result.output
    finally:
        await erin.close()
